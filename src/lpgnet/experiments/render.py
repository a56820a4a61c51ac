"""docs/RESULTS.md, generated from experiment outputs, never typed by hand.

A manifest (``experiments/iemocap.yaml``) lists tables; each row is one config, optional
``--set`` overrides and a seed count, i.e. exactly one ``lpgnet experiment`` command,
plus the paper's own figure for that row where it has one. ``lpgnet report`` reads each
row's ``summary.json`` and writes the Markdown; with ``--run`` it first runs every row
whose summary is missing (seeds already finished are reused, so it resumes).

Rows are read from their run directories or the committed record (``record.py``);
``--only`` re-renders just the named sections of an existing page and keeps the rest as
it was. Each benchmark's JSON is rendered by its own module in ``lpgnet.benchmarks``.

Every table names the metric family of each number: the paper reports one-vs-all
averaged binary accuracy/F1 (SPEC "Metrics"), which for 4 classes equals
1 - (1 - multiclass accuracy) / 2; most peers and this project's headline report
multiclass accuracy and weighted F1.
"""

from __future__ import annotations

import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..benchmarks import (
    analyze,
    corpus_memory,
    dialogue_memory,
    efficiency,
    frame_cost,
    scale,
    serve_load,
    text_features,
    threads,
    train_speed,
)
from ..config import load_config
from ..errors import ConfigError
from ..files import write_text
from ..training.metrics import HEADLINE, paired_difference, pearson
from .figures import draw_table_figure
from .manifest import Benchmark, Row, Table, Target, command, read_manifest, row_dir
from .provenance import render_provenance
from .record import Sources, current_summary, read_summary_file, sources, sync_record
from .runner import run_manifest_rows

# a manifest benchmark's ``kind`` -> the module that measured it and renders its JSON
BENCHMARKS = {
    "bench": efficiency,
    "dialogue_memory": dialogue_memory,
    "analyze": analyze,
    "scale": scale,
    "corpus_memory": corpus_memory,
    "frame_cost": frame_cost,
    "serve_load": serve_load,
    "text_features": text_features,
    "threads": threads,
    "train_speed": train_speed,
}


def _ms(block: dict[str, Any], key: str, scale: float = 100.0, n: int = 2) -> str:
    """Mean ± std; a figure that rests on one run (n = 1) has no spread to show."""
    v = block[key]
    if n == 1:
        return f"{scale * v['mean']:.2f}"
    return f"{scale * v['mean']:.2f} ± {scale * v['std']:.2f}"


def render_table(table: Table, src: Sources, figures: Path | None = None) -> str:
    """A table's section: note, table, study/selection lines, its figure (drawn into
    ``figures``, when given and some row has runs), and the commands behind its rows."""
    lines = [f"### {table.title}", ""]
    if table.note:
        lines += [table.note.strip(), ""]
    summaries, stale = [], {}
    for r in table.rows:
        s, why = current_summary(src, table, r)
        if why:
            stale[r.name] = why
        summaries.append((r, s))
    gains = _selection_gains(summaries) if table.kind == "study" else {}  # rows against their base rows
    if table.kind == "per_class":
        lines += _per_class(summaries, stale)
    elif table.kind == "selection":
        lines += _selection(summaries, stale)
    elif table.kind == "retrain":
        lines += _retrain(summaries, stale)
    else:
        study = table.kind == "study"
        head = (["selection wF1", "selection acc"] if study else []) + [
            "N",
            "acc",
            "wF1",
            "macro F1",
            "UAR",
            "1-vs-all acc",
            "1-vs-all F1",
        ]
        if not study:
            head += ["paper (1-vs-all acc / F1)"]
        if gains:
            head += ["selection wF1 - base's (paired by seed, 95% interval, pairs)", "adopted"]
        lines += ["| row | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
        for row, s in summaries:
            if s is None:
                what = stale.get(row.name, "not run yet")
                lines.append(f"| {row.name} | " + " | ".join([what] + [""] * (len(head) - 1)) + " |")
                continue
            if row.split not in s:
                lines.append(
                    f"| {row.name} | "
                    + " | ".join([f"no {row.split} scores in its runs"] + [""] * (len(head) - 1))
                    + " |"
                )
                continue
            test, valid = s[row.split], s["valid"]
            n = len(s["runs"])
            cells = [_ms(valid, "weighted_f1", n=n), _ms(valid, "accuracy", n=n)] if study else []
            cells += [str(n)] + [_ms(test, k, n=n) for k in HEADLINE]
            if not study:
                cells.append(
                    " / ".join(f"{row.paper[k]:.2f}" for k in ("acc", "f1") if k in row.paper) if row.paper else "–"
                )
            if gains:
                cells += _against_base(row, gains.get(row.key), table.adopt_at)
            lines.append(f"| {row.name} | " + " | ".join(cells) + " |")
            for fold, fs in (s.get("per_fold") or {}).items():  # leave-one-out: each fold on its own line
                n = len(s["seeds"])
                cells = [str(n)] + [_ms(fs["test"], k, n=n) for k in HEADLINE]
                lines.append(
                    f"| &nbsp;&nbsp;{fold} | "
                    + " | ".join((["", ""] if study else []) + cells + ([""] if not study else []))
                    + " |"
                )
    if table.kind == "study":
        lines += _study_correlation(summaries)
        lines += _adopted(table, summaries, gains)
    if figures is not None and draw_table_figure(table, summaries, figures / f"{table.id}.png"):
        lines += ["", f"![{table.title}]({figures.name}/{table.id}.png)"]
    lines += ["", "Commands (from the repository root):", "", "```"]
    lines += [command(r, row_dir(src.runs, table, r)) for r in table.rows if not r.same_as]
    lines += [f"# {r.name}: the experiment of row {r.same_as}" for r in table.rows if r.same_as]
    lines += ["```", ""]
    return "\n".join(lines)


def render_targets(targets: list[Target], src: Sources, rows: dict[str, tuple[Table, Row]]) -> str:
    """Each target against the measured test means (or, ``statistic: std``, the seed-to-seed
    spread of one row's test figure). A target on a difference of two rows
    pairs their runs by (fold, seed) and gives the paired 95% t interval of the
    difference over those runs; an interval that includes zero is "not resolved"."""
    lines = [
        "### Targets",
        "",
        "Differences are paired by seed (and fold): the interval is the paired t interval over the runs both rows have "
        "(seed-to-seed spread; utterances are not resampled).",
        "",
        "| target | measured (test, mean over runs) | paired 95% interval of the difference | met |",
        "|---|---|---|---|",
    ]

    def load(ref: str) -> dict[str, Any] | None:
        if ref not in rows:
            raise ConfigError(f"target {ref!r}: names no row of the manifest (table/row-key)")
        return current_summary(src, *rows[ref])[0]

    for t in targets:
        a = load(t.row)
        b = load(t.minus) if t.minus else None
        if a is None or (t.minus and b is None):
            lines.append(f"| {t.text} | not run yet | | |")
            continue
        if t.statistic == "std":
            value = a["test"][t.metric]["std"]
            what = f"{t.metric} std {value:.4f} over {len(a['runs'])} runs"
            lines.append(f"| {t.text} | {what} | | {_met(value, at_most=t.at_most)} |")
            continue
        if b is None:
            value = a["test"][t.metric]["mean"]
            what = f"{t.metric} {value:.4f} (N = {len(a['runs'])})"
            lines.append(f"| {t.text} | {what} | | {_met(value, at_least=t.at_least)} |")
            continue
        value = a["test"][t.metric]["mean"] - b["test"][t.metric]["mean"]
        what = f"{t.metric} {a['test'][t.metric]['mean']:.4f} - {b['test'][t.metric]['mean']:.4f} = {value:.4f}"
        what += f" (N = {len(a['runs'])} / {len(b['runs'])})"
        d = _paired(a, b, t.metric)
        if d is None:
            lines.append(f"| {t.text} | {what} | not paired: the rows share no (fold, seed) | **not resolved** |")
            continue
        interval = f"{d['mean']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}], {d['n']} pairs"
        met = "not resolved" if not d["resolved"] else ("yes" if d["mean"] >= t.at_least else "**no**")
        lines.append(f"| {t.text} | {what} | {interval} | {met} |")
    return "\n".join(lines + [""])


def _met(value: float, at_least: float | None = None, at_most: float | None = None) -> str:
    """ "yes", or "no" with the distance to the bound, so an unmet goal says by how much."""
    if at_most is not None:
        return "yes" if value <= at_most else f"**no** (over by {value - at_most:.4f})"
    return "yes" if value >= at_least else f"**no** (short by {at_least - value:.4f})"


def _by_run(summary: dict[str, Any], metric: str, split: str = "test") -> dict[tuple[str | None, int], float]:
    """A summary's ``split`` ``metric`` per (fold, seed)."""
    return {(r.get("fold"), r["seed"]): r[split][metric] for r in summary["runs"]}


def _paired(a: dict[str, Any], b: dict[str, Any], metric: str, split: str = "test") -> dict[str, float] | None:
    """``paired_difference`` of two summaries' ``split`` ``metric`` over the (fold, seed)
    runs both have; None when they share none."""
    mine, theirs = _by_run(a, metric, split), _by_run(b, metric, split)
    both = sorted(set(mine) & set(theirs), key=str)
    return paired_difference([mine[k] for k in both], [theirs[k] for k in both]) if both else None


def _selection_gains(summaries) -> dict[str, dict[str, float] | None]:
    """Per study row with a base (by key): the paired difference of its selection wF1
    and its base's, over the runs both have; None while either is missing."""
    by_key = {row.key: s for row, s in summaries}
    return {
        row.key: _paired(s, by_key[row.base], "weighted_f1", "valid") if s and by_key[row.base] else None
        for row, s in summaries
        if row.base
    }


def _in_points(d: dict[str, float]) -> str:
    """A paired difference of fractions and its interval, in points: "+1.00 [+0.52, +1.48]"."""
    return f"{100 * d['mean']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]"


def _adopts(d: dict[str, float], adopt_at: float) -> bool:
    """The study's rule: a change is adopted when it raises the mean selection wF1 of its
    base by ``adopt_at``, over two paired runs at least (one run has no spread to judge)."""
    return d["n"] >= 2 and d["mean"] >= adopt_at


def _against_base(row: Row, d: dict[str, float] | None, adopt_at: float) -> list[str]:
    """A study row's two cells against its base: the paired selection difference and
    whether the rule adopts the change (the test score plays no part)."""
    if not row.base:
        return ["(base)", ""]
    if d is None:
        return ["not measured yet (no run shared with its base)", ""]
    if d["n"] < 2:
        return [f"{100 * d['mean']:+.2f}, 1 pair (no interval)", "not yet (1 pair)"]
    cell = f"{_in_points(d)}, {d['n']}"
    return [cell, "yes" if _adopts(d, adopt_at) else "no"]


def _adopted(table: Table, summaries, gains: dict[str, dict[str, float] | None]) -> list[str]:
    """One line per base row: which of its changes the selection rule adopts."""
    names = {row.key: row.name for row, _ in summaries}
    lines = []
    for base in dict.fromkeys(r.base for r, _ in summaries if r.base):
        changes = [r.key for r, _ in summaries if r.base == base]
        done = {k: gains[k] for k in changes if gains[k] is not None and gains[k]["n"] >= 2}  # type: ignore[index]
        kept = [f"{names[k]} ({100 * d['mean']:+.2f})" for k, d in done.items() if _adopts(d, table.adopt_at)]
        what = "adopts " + ", ".join(kept) if kept else "adopts no change" if done else "has no change measured yet"
        lines.append(
            f"- From {names[base]}: the rule {what} ({len(done)} of {len(changes)} changes measured on 2 seeds "
            f"or more; threshold {100 * table.adopt_at:+.2f} points of mean selection wF1)."
        )
    return ["", *lines] if lines else []


def _selection(summaries, stale: dict[str, str]) -> list[str]:
    """Selection score against test score, per row, across its runs: a selection rule that
    tracks held-out data gives a clearly positive correlation (computed after the fact,
    never used to choose anything)."""
    lines = [
        "| row | rule | N | selection wF1 | test wF1 | selection - test | Pearson r (selection, test) across runs |",
        "|---|---|---|---|---|---|---|",
    ]
    by_rule: dict[str, list] = {}
    for row, s in summaries:
        if s is None:
            lines.append(f"| {row.name} | {stale.get(row.name, 'not run yet')} | | | | | |")
            continue
        sel = [r["valid"]["weighted_f1"] for r in s["runs"]]
        test = [r["test"]["weighted_f1"] for r in s["runs"]]
        rule = load_config(row.config, row.set).train.selection
        by_rule.setdefault(rule, []).append((row, s))
        r = pearson(sel, test)
        gap = 100 * (statistics.fmean(sel) - statistics.fmean(test))
        lines.append(
            f"| {row.name} | {rule} | {len(sel)} | {_ms(s['valid'], 'weighted_f1')} | {_ms(s['test'], 'weighted_f1')} "
            f"| {gap:+.2f} | {'–' if r is None else f'{r:+.2f}'} |"
        )
    for rule, rows in by_rule.items():  # across configurations: would choosing among them by it track test?
        lines += _study_correlation(rows, f"{rule} rows")
    return lines


def _fold_model_accuracy(run: dict[str, Any]) -> tuple[float, float] | None:
    """A cross-validated run's fold models on test: the mean accuracy of the models alone
    and the accuracy of their averaged probabilities; None for a run that did not record
    them (holdout runs, and cross-validated runs from before they were recorded)."""
    f = run.get("fold_models_test")
    if not f:
        return None
    return statistics.fmean(f["members"]["accuracy"]), f["ensemble"]["accuracy"]


def _retrain(summaries, stale: dict[str, str]) -> list[str]:
    """Does the final model land where the models the selection score measured did? Per
    cross-validated row: the final retrain's test accuracy against its own fold models'
    (each trained on three of the four training sessions for the chosen epoch count), alone
    and averaged, paired by seed. Computed after the fact, never used to choose."""
    head = [
        "N",
        "best epoch",
        "selection wF1",
        "test acc: final retrain",
        "fold models alone",
        "fold models averaged",
        "alone - retrain (paired, 95% interval)",
        "averaged - retrain (paired, 95% interval)",
    ]
    lines = ["| row | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for row, s in summaries:
        runs = [(r, _fold_model_accuracy(r)) for r in (s or {}).get("runs", [])]
        runs = [(r, f) for r, f in runs if f is not None]
        if not runs:
            why = "no fold-model scores in its runs" if s is not None else stale.get(row.name, "not run yet")
            lines.append(f"| {row.name} | " + " | ".join([why] + [""] * (len(head) - 1)) + " |")
            continue
        retrain = [r["test"]["accuracy"] for r, _ in runs]
        alone, averaged = [f[0] for _, f in runs], [f[1] for _, f in runs]
        cells = [
            str(len(runs)),
            f"{statistics.fmean(r['best_epoch'] for r, _ in runs):.1f}",
            _spread([r["valid"]["weighted_f1"] for r, _ in runs]),
            _spread(retrain),
            _spread(alone),
            _spread(averaged),
        ]
        for other in (alone, averaged):
            d = paired_difference(other, retrain)
            cells.append(
                (_in_points(d) if d["n"] >= 2 else f"{100 * d['mean']:+.2f}")
                + ("" if d["resolved"] else " not resolved")
            )
        lines.append(f"| {row.name} | " + " | ".join(cells) + " |")
    return lines


def _spread(values: list[float]) -> str:
    """Mean ± sample std of fractions, in points; the mean alone for one value."""
    if len(values) < 2:
        return f"{100 * values[0]:.2f}"
    return f"{100 * statistics.fmean(values):.2f} ± {100 * statistics.stdev(values):.2f}"


def _study_correlation(summaries, rows: str = "rows") -> list[str]:
    """Whether choosing among these rows by their selection score (validation carve or
    pooled left-out folds) would track test: the correlation of mean selection wF1 and
    mean test wF1 across the rows, after the fact; nothing for fewer than three rows."""
    done = [s for _, s in summaries if s is not None]
    r = pearson([s["valid"]["weighted_f1"]["mean"] for s in done], [s["test"]["weighted_f1"]["mean"] for s in done])
    if r is None:
        return []
    return [
        "",
        f"Across these {len(done)} {rows}, mean selection wF1 and mean test wF1 correlate at r = {r:+.2f} "
        "(Pearson; computed after the fact, not used to choose).",
    ]


def _per_class(summaries, stale: dict[str, str]) -> list[str]:
    lines = []
    for row, s in summaries:
        if s is None:
            lines += [f"{row.name}: " + stale.get(row.name, "not run yet"), ""]
            continue
        classes = list(s["test"]["per_class"])
        lines += [
            f"**{row.name}** (test, N = {len(s['runs'])}, per-class F1 and recall; the other class most of its misses go to, % of the class)",
            "",
        ]
        lines += ["| | " + " | ".join(classes) + " | overall |", "|---" * (len(classes) + 2) + "|"]
        pc = s["test"]["per_class"]
        lines.append(
            "| F1 | " + " | ".join(_ms(pc[c], "f1") for c in classes) + f" | wF1 {_ms(s['test'], 'weighted_f1')} |"
        )
        lines.append(
            "| recall | " + " | ".join(_ms(pc[c], "recall") for c in classes) + f" | acc {_ms(s['test'], 'accuracy')} |"
        )
        lines.append("| missed mostly as | " + " | ".join(_top_confusion(s["runs"], c) for c in classes) + " | |")
        if row.paper:
            lines.append(
                "| paper | "
                + " | ".join(f"{row.paper[c]:.2f}" if c in row.paper else "–" for c in classes)
                + f" | {row.paper.get('overall', float('nan')):.2f} |"
            )
        lines.append("")
    return lines


def _top_confusion(runs: list[dict[str, Any]], c: str) -> str:
    """The other class that takes most of class ``c``'s test utterances (largest mean
    share over the runs), with that share's mean ± std in % of ``c``'s utterances: a
    seed-to-seed spread in one class's recall shows here as the boundary it moves along."""
    shares: dict[str, list[float]] = {}
    for run in runs:
        test = run["test"]
        if "confusion_matrix" not in test or c not in test.get("labels", []):
            return "–"  # a run recorded before confusion matrices were kept
        labels, cm = test["labels"], test["confusion_matrix"]
        row = cm[labels.index(c)]
        total = max(sum(row), 1)
        for j, other in enumerate(labels):
            if other != c:
                shares.setdefault(other, []).append(row[j] / total)
    if not shares:
        return "–"
    other, v = max(shares.items(), key=lambda kv: statistics.fmean(kv[1]))
    if not any(v):
        return "none"  # no run missed any utterance of c
    return f"{other} {_spread(v)}"


def render_benchmark(b: Benchmark) -> str:
    """A benchmark's section: its note, its JSON rendered by its own module, its command."""
    lines = [f"### {b.title}", ""]
    if b.note:
        lines += [b.note.strip(), ""]
    data = read_summary_file(Path(b.file))
    if data is None:
        lines += [f"not run yet (`{b.file}` is missing)", ""]
    else:
        lines += BENCHMARKS[b.kind].render(data, Path(b.file))
    lines += ["```", b.command, "```", ""]
    return "\n".join(lines)


def build_sections(
    manifest: str | Path,
    runs_dir: str | Path | None = None,
    run: bool = False,
    only: list[str] | None = None,
    shard: tuple[int, int] = (0, 1),
    log: Callable[[str], None] | None = None,
    use_record: bool = True,
    device: str | None = None,
    executor: Any = None,
    figures: Path | None = None,
) -> list[tuple[str | None, str]]:
    """The page as (section id, Markdown) pairs, in order: ``preamble``, ``targets``, each
    table by its id, each benchmark by its kind, ``provenance`` (what each row's runs were
    trained on); the footer has id None. With ``figures``
    (a folder beside the page), each table re-rendered (all, or those of ``only``) also
    gets its figure there."""
    meta, tables = read_manifest(manifest)
    src = sources(meta, runs_dir, use_record)
    if only:
        known = {t.id for t in tables} | {b.kind for b in meta["benchmarks"]} | {"preamble", "targets", "provenance"}
        unknown = sorted(set(only) - known)
        if unknown:
            raise ConfigError(
                f"{manifest}: --only {', '.join(unknown)}: no such table (known: {', '.join(sorted(known))})"
            )
    say = log or (lambda m: print(m, file=sys.stderr))
    if run:
        run_manifest_rows(tables, src, only, shard, log, say, device, executor)
    parts: list[tuple[str | None, str]] = [("preamble", meta.get("preamble", "").strip() + "\n")]
    if meta["targets"]:
        rows = {f"{t.id}/{r.key}": (t, r) for t in tables for r in t.rows if not r.same_as}
        parts.append(("targets", render_targets(meta["targets"], src, rows)))
    parts += [(t.id, render_table(t, src, figures if not only or t.id in only else None)) for t in tables]
    parts += [(b.kind, render_benchmark(b)) for b in meta["benchmarks"]]
    # every row with runs, read once for the provenance section and the footer
    done = [
        (f"{t.id}/{r.key}", s)
        for t in tables
        for r in t.rows
        if not r.same_as
        for s in [current_summary(src, t, r)[0]]
        if s
    ]
    if done:
        parts.append(("provenance", render_provenance(done, src)))
        n = sum(len(s["runs"]) for _, s in done)
        hours = sum(r.get("train_seconds", 0.0) for _, s in done for r in s["runs"]) / 3600
        parts.append(
            (
                None,
                f"{FOOTER} {n} training runs, {hours:.1f} hours of training in total as measured by the "
                "runs (`train_seconds`, excluding text-feature extraction, which is cached after its first run).\n",
            )
        )
    if meta.get("postscript", "").strip():
        parts.append((None, meta["postscript"].strip() + "\n"))
    return parts


def join_sections(parts: list[tuple[str | None, str]]) -> str:
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
    """``old`` with the sections of ``only`` replaced by their new text; the rest kept. A
    section new to the manifest is inserted before the next section the page has. The
    footer's totals count every row, so any row re-rendered can change them: the page's
    footer line is always refreshed (a page without one is left without)."""
    text = old
    totals = next((new for sid, new in parts if sid is None and new.startswith(FOOTER)), None)
    if totals is not None:
        text = re.sub(rf"^{FOOTER}.*\n?", lambda _: totals, text, count=1, flags=re.M)
    for i, (sid, new) in enumerate(parts):
        if sid not in only:
            continue
        if sid == "preamble":  # everything before the first section
            first = _NEXT_SECTION.search(text)
            text = new + "\n" + text[first.start() if first else len(text) :]
            continue
        span = _section_span(text, _title(new)) or _renamed_span(text, parts, i)
        if span is None:  # new: before the first later section already on the page, else before the footer
            later = _first_on_page(text, [n for s, n in parts[i + 1 :] if s is not None])
            at = later[0] if later else None
            if at is None:
                footer = re.search(rf"^{FOOTER}", text, re.M)
                at = footer.start() if footer else len(text)
            span = (at, at)
        text = text[: span[0]] + new + ("\n" if span[1] < len(text) else "") + text[span[1] :]
    return text


def _renamed_span(text: str, parts: list[tuple[str | None, str]], i: int) -> tuple[int, int] | None:
    """Where section ``i`` sat under its old title, if the manifest renamed it: the page's
    section right after the nearest earlier section of ``parts``, when its heading is no
    section's title any more (else a renamed table would be added beside its old copy)."""
    titles = {_title(n) for s, n in parts if s not in (None, "preamble")}
    earlier = _first_on_page(text, [n for s, n in reversed(parts[:i]) if s not in (None, "preamble")])
    end = earlier[1] if earlier else None
    head = _NEXT_SECTION.search(text, end) if end is not None else _NEXT_SECTION.search(text)
    if head is None or not head.group().startswith("### "):
        return None
    title = _title(text[head.start() :])
    return None if title in titles else _section_span(text, title)


def _first_on_page(text: str, sections: list[str]) -> tuple[int, int] | None:
    """Where the first of ``sections`` (rendered, so found by title) sits on the page."""
    return next((sp for n in sections if (sp := _section_span(text, _title(n))) is not None), None)


def _title(section: str) -> str:
    return section.split("\n", 1)[0].removeprefix("### ")


def write_report(manifest: str | Path, out: str | Path, only: list[str] | None = None, **kw: Any) -> Path:
    """Write the page (atomically), each table's figure in ``figures/`` beside it; with
    ``only`` and an existing page, only those sections (and figures) are replaced. Then
    refresh the record from the current run directories."""
    out = Path(out)
    parts = build_sections(manifest, only=only, figures=out.parent / "figures", **kw)
    if only and out.exists():
        text = replace_sections(out.read_text(encoding="utf-8"), parts, only)
    else:
        text = join_sections(parts)
    write_text(out, text)
    sync_record(manifest, kw.get("runs_dir"))
    return out
