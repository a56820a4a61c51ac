"""docs/RESULTS.md, generated from experiment outputs, never typed by hand.

A manifest (``experiments/iemocap.yaml``) lists tables; each row is one config, optional
``--set`` overrides and a seed count, i.e. exactly one ``lpgnet experiment`` command,
plus the paper's own figure for that row where it has one. ``lpgnet report`` reads each
row's ``summary.json`` and writes the Markdown; with ``--run`` it first runs every row
whose summary is missing (seeds already finished are reused, so it resumes).

Run directories are large and stay out of git, so a page generated from them alone
could not be regenerated on another machine. A manifest's ``record_dir`` keeps a copy of
every summary the page shows (metrics only, no data) in the repository: ``lpgnet report``
reads a row from its run directory when that is current, else from the record, and
refreshes the record from current run directories after writing the page. ``--only``
re-renders just the named sections of an existing page and keeps the rest as it was.

Every table names the metric family of each number: the paper reports one-vs-all
averaged binary accuracy/F1 (SPEC "Metrics"), which for 4 classes equals
1 - (1 - multiclass accuracy) / 2; most peers and this project's headline report
multiclass accuracy and weighted F1.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

import yaml

from .config import from_dict, load_config, same_config
from .errors import ConfigError
from .experiment import run_experiment
from .files import write_json, write_text


@dataclass
class Row:
    name: str
    config: str = ""  # empty only for a same_as row
    set: list[str] = field(default_factory=list)
    seeds: int = 3
    folds: list[str] | None = None  # leave-one-group-out fold values, e.g. ["1", ..., "5"]
    paper: dict[str, float] | None = None  # the paper's figures (its metric family)
    key: str = ""
    same_as: str | None = None  # "table/row-key": show that row's experiment, do not run another
    split: str = "test"  # which scores to show: test, or test_without_audio / test_without_text


@dataclass
class Table:
    id: str
    title: str
    rows: list[Row]
    note: str = ""
    kind: Literal["main", "study", "per_class"] = "main"  # study: validation columns first


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass
class Benchmark:
    """A benchmark script's JSON output, shown as a table with the command that wrote it."""

    title: str
    kind: Literal["train_speed", "text_features", "bench", "serve_load", "frame_cost"]
    file: str
    command: str
    note: str = ""


@dataclass
class Target:
    """A figure the project promises: a row's test mean (minus another row's) >= at_least."""

    text: str
    row: str  # "table/row-key"
    metric: str = "accuracy"
    at_least: float = 0.0
    minus: str | None = None  # another "table/row-key": the target is on the difference


@dataclass
class Manifest:
    tables: list[Table]
    runs_dir: str = "runs"
    preamble: str = ""
    benchmarks: list[Benchmark] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    postscript: str = ""
    record_dir: str | None = None  # committed copies of the summaries the page shows


def read_manifest(path: str | Path) -> tuple[dict[str, Any], list[Table]]:
    """The manifest, checked as strictly as a config: unknown keys and wrong types are
    errors naming the key."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read manifest ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with 'tables', got {type(data).__name__}")
    manifest = from_dict(Manifest, data, str(path))
    tables = manifest.tables
    for table in tables:
        keys = set()
        for r in table.rows:
            r.key = r.key or _slug(r.name)
            if not (r.config or r.same_as):
                raise ConfigError(f"{path}: table {table.id}: row {r.name!r}: needs config (or same_as)")
            if r.key in keys:
                raise ConfigError(f"{path}: table {table.id}: two rows share the key {r.key!r} (give one a 'key')")
            if r.seeds < 1:
                raise ConfigError(f"{path}: table {table.id}: row {r.name!r}: seeds must be at least 1")
            keys.add(r.key)
    rows = {f"{t.id}/{r.key}": r for t in tables for r in t.rows}
    for t in tables:
        for r in t.rows:
            if r.same_as:
                if r.same_as not in rows:
                    raise ConfigError(f"{path}: table {t.id}: row {r.name!r}: same_as {r.same_as!r} names no row")
                src = rows[r.same_as]
                r.config, r.set, r.seeds, r.folds = src.config, src.set, src.seeds, src.folds
    meta = {"runs_dir": manifest.runs_dir, "preamble": manifest.preamble, "postscript": manifest.postscript,
            "benchmarks": manifest.benchmarks, "targets": manifest.targets, "record_dir": manifest.record_dir}
    return meta, tables


def _out(runs: Path, table: Table, row: Row) -> Path:
    return runs / row.same_as if row.same_as else runs / table.id / row.key


def command(row: Row, out: Path) -> str:
    parts = ["lpgnet", "experiment", "--config", row.config]
    for s in row.set:
        parts += ["--set", s]
    parts += ["--seeds", str(row.seeds)]
    if row.folds:
        parts += ["--folds", ",".join(row.folds)]
    parts += ["--out", str(out)]
    return shlex.join(parts)


def _ms(block: dict[str, Any], key: str, scale: float = 100.0, n: int = 2) -> str:
    """Mean ± std; a figure that rests on one run (n = 1) has no spread to show."""
    v = block[key]
    if n == 1:
        return f"{scale * v['mean']:.2f}"
    return f"{scale * v['mean']:.2f} ± {scale * v['std']:.2f}"


def row_folds(row: Row) -> list[str] | None:
    """The protocols of a row's leave-one-out folds (as run_experiment names them), or None."""
    return [f"loso-{g}" for g in row.folds] if row.folds else None


def wanted_runs(row: Row) -> set[tuple[str | None, int]]:
    """The (fold, seed) pairs a row's experiment trains."""
    return {(f, s) for f in row_folds(row) or [None] for s in range(row.seeds)}


def runs_of(summary: dict[str, Any]) -> set[tuple[str | None, int]]:
    return {(r.get("fold"), r.get("seed")) for r in summary.get("runs", [])}


def _partial(why: str | None) -> bool:
    """Whether a stale_reason says the summary is an unfinished part of its row."""
    return why is not None and why.startswith("incomplete")


def stale_reason(row: Row, summary: dict[str, Any]) -> str | None:
    """Why a summary no longer answers its manifest row (config, seeds or folds changed),
    or, for a part of the row's experiment, ``"incomplete: ..."``."""
    if not same_config(summary.get("config_yaml"), load_config(row.config, row.set)):
        return "its config changed since the summary was written"
    have, wanted = runs_of(summary), wanted_runs(row)
    if have < wanted:
        return f"incomplete: {len(have)} of its {len(wanted)} runs finished"
    if summary.get("seeds") != list(range(row.seeds)):
        return f"it has seeds {summary.get('seeds')}, the row asks for {row.seeds}"
    if summary.get("folds") != row_folds(row):
        return "its folds differ from the row's"
    if row.split not in summary:
        return f"its runs have no {row.split} scores"
    return None


@dataclass
class Sources:
    """Where a row's summary may be: its run directory, else the committed record."""

    runs: Path
    record: Path | None = None

    def run_path(self, table: Table, row: Row) -> Path:
        return _out(self.runs, table, row) / "summary.json"

    def record_path(self, table: Table, row: Row) -> Path | None:
        if self.record is None:
            return None
        ref = row.same_as or f"{table.id}/{row.key}"
        return self.record / f"{ref}.json"


def _read(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def current_summary(src: Sources, table: Table, row: Row) -> tuple[dict[str, Any] | None, str | None]:
    """A row's summary if it still answers the row, else (None, why not): a stale summary
    is never shown as if it were the row's result. The run directory wins over the record."""
    why = None
    for path in (src.run_path(table, row), src.record_path(table, row)):
        s = _read(path)
        if s is None:
            continue
        stale = stale_reason(row, s)
        if stale is None:
            return s, None
        why = why or stale  # the run directory's reason first
    if why is None:
        return None, None
    if _partial(why):
        return None, f"{why}; `lpgnet report --run` trains the rest (finished runs are reused, from the record too)"
    hint = ("`lpgnet report --run` completes it (finished seeds are reused, missing scores computed from their weights)" if "config" not in why
            else "move the old directory (and its record) away, then `lpgnet report --run`")
    return None, f"out of date: {why}; {hint}"


def render_table(table: Table, src: Sources) -> str:
    lines = [f"### {table.title}", ""]
    if table.note:
        lines += [table.note.strip(), ""]
    summaries, stale = [], {}
    for r in table.rows:
        s, why = current_summary(src, table, r)
        if why:
            stale[r.name] = why
        summaries.append((r, s))
    if table.kind == "per_class":
        lines += _per_class(summaries, stale)
    else:
        study = table.kind == "study"
        head = (["valid wF1", "valid acc"] if study else []) + ["N", "acc", "wF1", "macro F1", "UAR", "1-vs-all acc", "1-vs-all F1"]
        if not study:
            head += ["paper (1-vs-all acc / F1)"]
        lines += ["| row | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
        for row, s in summaries:
            if s is None:
                what = stale.get(row.name, "not run yet")
                lines.append(f"| {row.name} | " + " | ".join([what] + [""] * (len(head) - 1)) + " |")
                continue
            if row.split not in s:
                lines.append(f"| {row.name} | " + " | ".join([f"no {row.split} scores in its runs"] + [""] * (len(head) - 1)) + " |")
                continue
            test, valid = s[row.split], s["valid"]
            n = len(s["runs"])
            cells = ([_ms(valid, "weighted_f1", n=n), _ms(valid, "accuracy", n=n)] if study else [])
            cells += [str(n)] + [_ms(test, k, n=n) for k in ("accuracy", "weighted_f1", "macro_f1", "uar", "ova_accuracy", "ova_f1")]
            if not study:
                cells.append(" / ".join(f"{row.paper[k]:.2f}" for k in ("acc", "f1") if k in row.paper) if row.paper else "–")
            lines.append(f"| {row.name} | " + " | ".join(cells) + " |")
            for fold, fs in (s.get("per_fold") or {}).items():  # leave-one-out: each fold on its own line
                n = len(s["seeds"])
                cells = [str(n)] + [_ms(fs["test"], k, n=n) for k in ("accuracy", "weighted_f1", "macro_f1", "uar", "ova_accuracy", "ova_f1")]
                lines.append(f"| &nbsp;&nbsp;{fold} | " + " | ".join((["", ""] if study else []) + cells + ([""] if not study else [])) + " |")
    lines += ["", "Commands (from the repository root):", "", "```"]
    lines += [command(r, _out(src.runs, table, r)) for r in table.rows if not r.same_as]
    lines += [f"# {r.name}: the experiment of row {r.same_as}" for r in table.rows if r.same_as]
    lines += ["```", ""]
    return "\n".join(lines)


def render_targets(targets: list[Target], src: Sources, rows: dict[str, tuple[Table, Row]]) -> str:
    """Each target against the measured test means (test split, as the issue states them)."""
    lines = ["### Targets", "", "| target | measured (test, mean over seeds) | met |", "|---|---|---|"]

    def load(ref: str) -> dict[str, Any] | None:
        if ref not in rows:
            raise ConfigError(f"target {ref!r}: names no row of the manifest (table/row-key)")
        return current_summary(src, *rows[ref])[0]

    for t in targets:
        a = load(t.row)
        b = load(t.minus) if t.minus else None
        if a is None or (t.minus and b is None):
            lines.append(f"| {t.text} | not run yet | |")
            continue
        value = a["test"][t.metric]["mean"] - (b["test"][t.metric]["mean"] if b else 0.0)
        what = f"{t.metric} {a['test'][t.metric]['mean']:.4f}" + (f" - {b['test'][t.metric]['mean']:.4f} = {value:.4f}" if b else "")
        n = f"N = {len(a['runs'])}" + (f" / {len(b['runs'])}" if b else "")
        lines.append(f"| {t.text} | {what} ({n}) | {'yes' if value >= t.at_least else '**no**'} |")
    return "\n".join(lines + [""])


def render_benchmark(b: Benchmark) -> str:
    lines = [f"### {b.title}", ""]
    if b.note:
        lines += [b.note.strip(), ""]
    try:
        data = json.loads(Path(b.file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if data is None:
        lines += [f"not run yet (`{b.file}` is missing)", ""]
    elif b.kind == "train_speed":
        env = data["env"]
        lines += [f"{env['cpu']}, {env['threads']} threads, torch {env['torch']}; measured fp32 matmul throughput "
                  f"{data['matmul_gflops']:.0f} GFLOP/s.", ""]
        lines += ["| config | d_model | parameters | s / epoch | GFLOP / epoch | achieved GFLOP/s | of matmul peak | padding per utterance, bucketed / random batches |",
                  "|---|---|---|---|---|---|---|---|"]
        for m in data["models"]:
            pad = m["padding_per_utterance"]
            lines.append(f"| `{m['config']}` | {m['d_model']} | {m['params']:,} | {m['sec_per_epoch']:.2f} | {m['gflop_per_epoch']:.1f} | "
                         f"{m['achieved_gflops']:.1f} | {100 * m['fraction_of_matmul_peak']:.0f}% | {pad['bucketed']:.2f} / {pad['random']:.2f} |")
        lines.append("")
    elif b.kind == "bench":
        lines += _bench_lines(data, Path(b.file))
    elif b.kind == "frame_cost":
        env = data["env"]
        lines += [f"{env['cpu']}, {env['threads']} threads, torch {env['torch']}.", "",
                  "| d_model | parameters | batch x frames | train step, s | train peak MB | inference, s | inference peak MB |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['d_model']} | {r['params']:,} | {r['batch']} x {r['frames']} | {r['train_step_s']:.2f} | "
                  f"{r['train_peak_mb']:.0f} | {r['inference_s']:.2f} | {r['inference_peak_mb']:.0f} |" for r in data["rows"]]
        lines.append("")
    elif b.kind == "serve_load":
        env = data["env"]
        lines += [f"{env['cpu']}, {env['threads']} threads, torch {env['torch']}; run: {data['run']}.", "",
                  "| seconds | clients | utterances / request | requests/s | utterances/s | p50 ms | p99 ms | status codes | 5xx or failed | requests/s per 10 s | held |",
                  "|---|---|---|---|---|---|---|---|---|---|---|",
                  f"| {data['seconds']:.0f} | {data['clients']} | {data['utterances_per_request']} | {data['requests_per_s']:.1f} | "
                  f"{data['utterances_per_s']:.0f} | {data['p50_ms']:.1f} | {data['p99_ms']:.1f} | "
                  f"{', '.join(f'{k}: {v}' for k, v in data['status_codes'].items())} | {data['server_errors']} | "
                  f"{', '.join(f'{w:.0f}' for w in data['requests_per_s_by_10s'])} | {'yes' if data['throughput_held'] else '**no**'} |", "",
                  f"Target: zero 5xx over the bounded load test and throughput held -- "
                  f"{'met' if data['server_errors'] == 0 and data['throughput_held'] else '**missed**'}.", ""]
    else:
        env = data["env"]
        lines += [f"{env['cpu']}, {env['threads']} threads, torch {env['torch']}:", ""]
        lines += [f"- frozen MiniLM, every utterance of the file: {data['frozen_encode_all_seconds']:.0f} s",
                  f"- one fine-tuning pass (3 epochs on the training dialogues) + encoding: {data['finetune_3_epochs_plus_encode_seconds']:.0f} s",
                  f"- reading the cached features back: {1000 * data['cached_read_seconds']:.0f} ms", ""]
    lines += ["```", b.command, "```", ""]
    return "\n".join(lines)


def _bench_lines(data: dict[str, Any], file: Path) -> list[str]:
    """``lpgnet bench`` JSON -> one table per setting, the LPGNet/SDT ratios and the plot."""
    env = data["env"]
    load = env.get("load_average_start")
    gflops = (env.get("matmul_gflops_start"), env.get("matmul_gflops_end"))
    lines = [f"{env['cpu']}, {env['threads']} threads, torch {env['torch']}"
             + (f"; 1-minute load average {load[0]:.2f} at the start" if load else "")
             + (f"; fp32 matmul {gflops[0]:.0f} GFLOP/s at the start, {gflops[1]:.0f} at the end" if None not in gflops else "")
             + f"; the whole benchmark took {env.get('bench_seconds', float('nan')):.0f} s.", ""]
    for key, title in (("models", "paper size: " + data["settings"]["paper"]),
                       ("models_iemocap", "IEMOCAP configs: " + data["settings"]["iemocap"])):
        models = data.get(key) or {}
        if not models:
            continue
        lengths = list(next(iter(models.values()))["latency_ms"])
        head = ["model", "d", "parameters", "GFLOP / dialogue (N = 50)"] + [f"ms @ N = {n}" for n in lengths]
        head += ["utt/s (batch 32)", "peak MB", "train epoch, s"]
        lines += [f"**{title}**", "", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
        for name, m in models.items():
            flops = m["flops"].get("50")
            cells = [name, str(m["d_model"] or "–"), f"{m['params']:,}", f"{flops / 1e9:.3f}" if flops is not None else "–"]
            cells += [f"{m['latency_ms'][n]:.2f}" for n in lengths]
            cells += [f"{m['throughput_utt_s']:,.0f}",
                      f"{m['peak_mem_mb']:.0f}" if m.get("peak_mem_mb") is not None else "–",
                      f"{m['train_epoch_s']:.1f}" if m.get("train_epoch_s") is not None else "–"]
            lines.append("| " + " | ".join(cells) + " |")
        ort_rows = [(name, m) for name, m in models.items() if m.get("latency_ms_onnxruntime")]
        if ort_rows:
            lines += ["", "onnxruntime (CPU, same threads) against eager PyTorch, batch 1, ms:", "",
                      "| model | " + " | ".join(f"N = {n}: eager / onnxruntime" for n in lengths) + " |",
                      "|---" * (len(lengths) + 1) + "|"]
            for name, m in ort_rows:
                ort = m["latency_ms_onnxruntime"]
                lines.append(f"| {name} | " + " | ".join(
                    f"{m['latency_ms'][n]:.2f} / {ort[n]:.2f} ({m['latency_ms'][n] / ort[n]:.1f}x)" for n in lengths) + " |")
            missing = [name for name, m in models.items() if not m.get("latency_ms_onnxruntime")]
            if missing:
                lines += ["", f"No onnxruntime figure for {', '.join(missing)}: its ONNX export does not pass the "
                          "parity check (PyTorch's Transformer layer traces with a fixed length)."]
            if "lpgnet" in dict(ort_rows) and "50" in lengths:
                m = models["lpgnet"]
                speed = m["latency_ms"]["50"] / m["latency_ms_onnxruntime"]["50"]
                lines += ["", f"Target: LPGNet's onnxruntime latency at N = 50 at least 2x lower than eager -- "
                          f"{speed:.1f}x, {'met' if speed >= 2 else '**missed**'}."]
        r = data.get("ratios", {}).get(key)
        if r:
            lines += ["", "LPGNet / SDT: parameters " + f"{r['params_lpgnet_over_sdt']:.2f}x"
                      + (f", FLOPs at N = 50 {r['flops50_lpgnet_over_sdt']:.2f}x" if "flops50_lpgnet_over_sdt" in r else "")
                      + (f", CPU latency at N = 50 {r['latency50_lpgnet_over_sdt']:.2f}x" if "latency50_lpgnet_over_sdt" in r else "")
                      + "."]
            met = lambda ok: "met" if ok else "**missed**"  # noqa: E731
            lines += ["", f"Targets: fewer parameters than SDT -- {met(r['params_lpgnet_over_sdt'] < 1)}; "
                      f"CPU latency at N = 50 at most 0.5x SDT's -- {met(r.get('latency50_lpgnet_over_sdt', 9) <= 0.5)}."]
        lines.append("")
    if data["settings"].get("train_epoch"):
        lines += [f"Epoch data: {data['settings']['train_epoch']}.", ""]
    cuda = data.get("cuda")
    if cuda:
        lengths = list(next(iter(cuda["models"].values()))["latency_ms"])
        lines += [f"**GPU ({cuda['device']}), paper size, synchronised latency, ms**", "",
                  "| model | " + " | ".join(f"N = {n}" for n in lengths) + " |", "|---" * (len(lengths) + 1) + "|"]
        lines += [f"| {name} | " + " | ".join(f"{m['latency_ms'][n]:.2f}" for n in lengths) + " |" for name, m in cuda["models"].items()]
        lines.append("")
    else:
        lines += ["No GPU on the machine that ran it: CPU figures only.", ""]
    png = file.with_suffix(".png")
    if png.exists():
        lines += [f"![latency and parameters](../{png.as_posix()})", ""]
    return lines


def _per_class(summaries, stale: dict[str, str]) -> list[str]:
    lines = []
    for row, s in summaries:
        if s is None:
            lines += [f"{row.name}: " + stale.get(row.name, "not run yet"), ""]
            continue
        classes = list(s["test"]["per_class"])
        lines += [f"**{row.name}** (test, N = {len(s['runs'])}, per-class F1 and recall, %)", ""]
        lines += ["| | " + " | ".join(classes) + " | overall |", "|---" * (len(classes) + 2) + "|"]
        pc = s["test"]["per_class"]
        lines.append("| F1 | " + " | ".join(_ms(pc[c], "f1") for c in classes) + f" | wF1 {_ms(s['test'], 'weighted_f1')} |")
        lines.append("| recall | " + " | ".join(_ms(pc[c], "recall") for c in classes) + f" | acc {_ms(s['test'], 'accuracy')} |")
        if row.paper:
            lines.append("| paper | " + " | ".join(f"{row.paper[c]:.2f}" if c in row.paper else "–" for c in classes)
                         + f" | {row.paper.get('overall', float('nan')):.2f} |")
        lines.append("")
    return lines


def _sources(meta: dict[str, Any], runs_dir: str | Path | None, use_record: bool) -> Sources:
    record = meta.get("record_dir")
    return Sources(Path(runs_dir or meta.get("runs_dir", "runs")), Path(record) if record and use_record else None)


def _run_missing(tables: list[Table], src: Sources, only: list[str] | None, shard: tuple[int, int],
                 log: Callable[[str], None] | None, say: Callable[[str], None], device: str | None = None) -> None:
    """Train every row (of ``only``, of this shard) that no current summary answers."""
    todo = [(t, r) for t in tables if not only or t.id in only for r in t.rows if not r.same_as]
    # every split any row shows of an experiment (same_as rows may show other ones)
    shown: dict[Path, set[str]] = {}
    for t in tables:
        for r in t.rows:
            shown.setdefault(_out(src.runs, t, r), set()).add(r.split)
    for t, r in todo[shard[0] :: shard[1]]:
        out = _out(src.runs, t, r)
        summary, _ = current_summary(src, t, r)
        if summary is None or not shown[out] <= set(summary):
            say(f"=== {t.id} / {r.name}: {command(r, out)}")
            run_experiment(r.config, out, list(range(r.seeds)), overrides=r.set, folds=row_folds(r), log=log, config_name=r.config,
                           device=device, reuse=_read(src.record_path(t, r)))


def build_sections(manifest: str | Path, runs_dir: str | Path | None = None, run: bool = False,
                   only: list[str] | None = None, shard: tuple[int, int] = (0, 1),
                   log: Callable[[str], None] | None = None, use_record: bool = True,
                   device: str | None = None) -> list[tuple[str | None, str]]:
    """The page as (section id, Markdown) pairs, in order: ``preamble``, ``targets``, each
    table by its id, each benchmark by its kind; the footer has id None."""
    meta, tables = read_manifest(manifest)
    src = _sources(meta, runs_dir, use_record)
    if only:
        known = {t.id for t in tables} | {b.kind for b in meta["benchmarks"]} | {"preamble", "targets"}
        unknown = sorted(set(only) - known)
        if unknown:
            raise ConfigError(f"{manifest}: --only {', '.join(unknown)}: no such table (known: {', '.join(sorted(known))})")
    say = log or (lambda m: print(m, file=sys.stderr))
    if run:
        from .train import resolve_device

        resolve_device(device)
        _run_missing(tables, src, only, shard, log, say, device)
    parts: list[tuple[str | None, str]] = [("preamble", meta.get("preamble", "").strip() + "\n")]
    if meta["targets"]:
        rows = {f"{t.id}/{r.key}": (t, r) for t in tables for r in t.rows if not r.same_as}
        parts.append(("targets", render_targets(meta["targets"], src, rows)))
    parts += [(t.id, render_table(t, src)) for t in tables]
    parts += [(b.kind, render_benchmark(b)) for b in meta["benchmarks"]]
    done = [s for t in tables for r in t.rows if not r.same_as for s in [current_summary(src, t, r)[0]] if s]
    if done:
        n = sum(len(s["runs"]) for s in done)
        hours = sum(r.get("train_seconds", 0.0) for s in done for r in s["runs"]) / 3600
        parts.append((None, f"{FOOTER} {n} training runs, {hours:.1f} hours of training in total as measured by the "
                      "runs (`train_seconds`, excluding text-feature extraction, which is cached after its first run).\n"))
    if meta.get("postscript", "").strip():
        parts.append((None, meta["postscript"].strip() + "\n"))
    return parts


def build_report(manifest: str | Path, runs_dir: str | Path | None = None, run: bool = False,
                 only: list[str] | None = None, shard: tuple[int, int] = (0, 1),
                 log: Callable[[str], None] | None = None, use_record: bool = True, device: str | None = None) -> str:
    return _join(build_sections(manifest, runs_dir, run, only, shard, log, use_record, device))


def _join(parts: list[tuple[str | None, str]]) -> str:
    return "\n".join(text for _, text in parts).rstrip() + "\n"


FOOTER = "Behind this page:"
_NEXT_SECTION = re.compile(rf"^(### |{FOOTER})", re.M)


def _section_span(text: str, title: str) -> tuple[int, int] | None:
    """Where the section headed ``### title`` sits in a page: up to the next section or
    the footer (the blank line before them included)."""
    head = re.search(rf"^### {re.escape(title)}\n", text, re.M)
    if head is None:
        return None
    nxt = _NEXT_SECTION.search(text, head.end())
    return head.start(), nxt.start() if nxt else len(text)


def replace_sections(old: str, parts: list[tuple[str | None, str]], only: list[str]) -> str:
    """``old`` with the sections of ``only`` replaced by their new text; the rest kept."""
    text = old
    for sid, new in parts:
        if sid not in only:
            continue
        if sid == "preamble":  # everything before the first section
            first = _NEXT_SECTION.search(text)
            text = new + "\n" + text[first.start() if first else len(text) :]
            continue
        title = new.split("\n", 1)[0].removeprefix("### ")
        span = _section_span(text, title)
        if span is None:
            raise ConfigError(f"section {title!r} ({sid}) is not in the existing page; regenerate it whole (without --only)")
        text = text[: span[0]] + new + ("\n" if span[1] < len(text) else "") + text[span[1] :]
    return text


def _keep(row: Row, summary: dict[str, Any] | None, record: dict[str, Any] | None) -> bool:
    """Whether a run-directory summary should replace the record's copy: when it answers
    the row, or when it is a part of the row's experiment that holds every run an
    unfinished record has (so an unfinished row is kept too, a finished record is never
    replaced by a part, and a record never loses a run of the row)."""
    if summary is None:
        return False
    why = stale_reason(row, summary)
    if why is None:
        return True
    if not _partial(why):
        return False
    if record is None:
        return True
    kept = stale_reason(row, record)
    if kept is None:
        return False  # a finished record is never replaced by a part
    # a stale record (another config) has nothing of the row's to lose; an unfinished one must be covered
    return not _partial(kept) or runs_of(record) <= runs_of(summary)


def sync_record(manifest: str | Path, runs_dir: str | Path | None = None) -> list[Path]:
    """Copy every current run-directory summary into the manifest's record_dir (only those
    that changed), and every unfinished one that adds runs to the record's (see _keep);
    returns the files written."""
    meta, tables = read_manifest(manifest)
    src = _sources(meta, runs_dir, True)
    written: list[Path] = []
    if src.record is None:
        return written
    for t in tables:
        for r in t.rows:
            if r.same_as:
                continue
            s = _read(src.run_path(t, r))
            target = src.record_path(t, r)
            assert target is not None
            old = _read(target)
            if not _keep(r, s, old):
                continue
            if old != s:
                write_json(target, s)
                written.append(target)
    return written


def write_report(manifest: str | Path, out: str | Path, only: list[str] | None = None, **kw: Any) -> Path:
    """Write the page (atomically); with ``only`` and an existing page, only those sections
    are replaced. Then refresh the record from the current run directories."""
    out = Path(out)
    parts = build_sections(manifest, only=only, **kw)
    if only and out.exists():
        text = replace_sections(out.read_text(encoding="utf-8"), parts, only)
    else:
        text = _join(parts)
    write_text(out, text)
    sync_record(manifest, kw.get("runs_dir"))
    return out
