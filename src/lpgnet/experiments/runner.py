"""Multi-seed (and multi-fold) experiments: one config, N seeds, mean ± std of every metric.

``lpgnet experiment --config C --seeds 10 --out DIR`` trains seeds 0..9, each into its
own run directory ``DIR/seed-K`` (a normal run: ``lpgnet evaluate --run`` works on it),
and writes ``DIR/summary.json``: per-seed rows plus mean and sample std of every scalar
metric and of every per-class figure, for valid and test. ``--folds loso`` repeats this
for each leave-one-session-out fold (``DIR/loso-S/seed-K``) and adds the mean over folds.

Interrupted experiments resume: a seed whose run directory is finished with the same
config is read back, not retrained. A finished seed with a *different* config is an
error unless ``overwrite`` is given, so results from two configs never mix. ``reuse``
(``--reuse SUMMARY.json``, e.g. a committed record) also counts the runs of an earlier
summary of the same config on the same data as finished, with no run directory: a row
too long for one sitting (ten SDT seeds on a CPU) is finished across machines.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ..config import RunConfig, dump_config, load_config, same_config
from ..errors import ConfigError, RunDirError
from ..files import write_json
from ..runs import RunDir
from ..training import distributed
from ..training.loop import train
from ..training.metrics import SCALARS, mean_std
from ..training.scoring import missing_modality_splits, score
from ..training.setup import (
    apply_threads,
    as_items,
    load_data,
    resolve_device,
    resolve_model_config,
    resolve_speakers,
)
from .manifest import Table, command, row_dir, row_folds
from .record import Sources, current_summary, read_summary_file


def parse_seeds(text: str) -> list[int]:
    """``"10"`` -> 0..9; ``"3-7"`` -> 3..7; ``"0,4,9"`` -> those."""
    text = text.strip()
    try:
        if "," in text:
            seeds = [int(s) for s in text.split(",")]
        elif "-" in text:
            lo, hi = (int(s) for s in text.split("-", 1))
            seeds = list(range(lo, hi + 1))
        else:
            seeds = list(range(int(text)))
    except ValueError:
        seeds = []
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ConfigError(f"--seeds {text!r}: expected a count (10), a range (0-9) or a list of distinct seeds (0,3,7)")
    return seeds


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std over runs of every scalar metric and per-class precision/recall/F1."""
    out: dict[str, Any] = {}
    for split in splits_of(runs):
        block: dict[str, Any] = {k: mean_std([r[split][k] for r in runs]) for k in SCALARS}
        classes = runs[0][split]["per_class"]
        block["per_class"] = {
            c: {k: mean_std([r[split]["per_class"][c][k] for r in runs]) for k in ("precision", "recall", "f1")}
            for c in classes
        }
        out[split] = block
    out["best_epoch"] = mean_std([r["best_epoch"] for r in runs])
    out["train_seconds"] = mean_std([r["train_seconds"] for r in runs])
    return out


def _row(metrics: dict[str, Any], seed: int, fold: str | None) -> dict[str, Any]:
    keys = [
        "valid",
        "test",
        *sorted(k for k in metrics if k.startswith("test_without_")),
        "best_epoch",
        "epochs_run",
        "train_seconds",
        "params",
    ]
    # data_sha256: which data the run saw, so a summary's runs can be reused (``reuse``) safely;
    # where and with what it ran, when the run recorded it (runs from before did not)
    # and, for a cross-validated run, its fold models on test (a diagnostic, never a choice)
    recorded = {k: metrics[k] for k in ("device", "torch", "selection", "fold_models_test") if k in metrics}
    return {
        "seed": seed,
        "fold": fold,
        **{k: metrics[k] for k in keys},
        "data_sha256": metrics.get("data_sha256"),
        **recorded,
    }


def read_summary(path: str | Path) -> dict[str, Any]:
    """A summary.json written by run_experiment, or a clear error naming the file."""
    path = Path(path)
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the summary to reuse ({e.strerror})") from None
    except ValueError as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("runs"), list) or "config_yaml" not in summary:
        raise ConfigError(
            f"{path}: not an experiment summary (expected an object with 'config_yaml' and a 'runs' list)"
        )
    return summary


def reusable_runs(summary: dict[str, Any] | None, cfg: RunConfig) -> dict[tuple[str | None, int], dict[str, Any]]:
    """The runs of an earlier summary that answer ``cfg`` (same config, execution fields
    aside), by (fold, seed); none if its config differs. Runs without a data fingerprint
    (summaries from before it was recorded) are left out: reuse needs the data to match."""
    if not summary or not same_config(summary.get("config_yaml"), cfg):
        return {}
    return {(r.get("fold"), r["seed"]): r for r in summary.get("runs", []) if r.get("data_sha256") is not None}


def splits_of(runs: list[dict[str, Any]]) -> list[str]:
    """valid, test, and the missing-modality test variants every run has."""
    extra = sorted(set.intersection(*(set(k for k in r if k.startswith("test_without_")) for r in runs)))
    return ["valid", "test", *extra]


def _finished(run_dir: Path, cfg: RunConfig, fingerprint: str, overwrite: bool) -> dict[str, Any] | None:
    """The metrics of a finished run of exactly this config on exactly this data, or None."""
    run = RunDir(run_dir)
    try:
        metrics = run.metrics()
    except RunDirError:
        return None  # not finished (or its files are unreadable): train it
    saved = run.config_text()
    if saved is None:
        return None
    # The saved config has the data-derived sizes filled in: compare it with ours, filled the same way.
    same = same_config(saved, cfg) and metrics.get("data_sha256", fingerprint) == fingerprint
    if same:
        return metrics
    if overwrite:
        return None
    raise RunDirError(
        f"{run_dir}: a finished run with a different config or data; use another --out or pass --overwrite"
    )


def add_missing_modality_scores(run_dir: Path, cfg: RunConfig, bundle: Any, metrics: dict[str, Any]) -> dict[str, Any]:
    """A finished multimodal run from before the missing-modality scores existed: score
    its test split without each modality from its saved weights (deterministic, nothing
    retrained) and add them to its metrics.json (atomically; the other keys unchanged)."""
    wanted = missing_modality_splits(cfg)
    if all(k in metrics for k in wanted):
        return metrics
    run = RunDir(run_dir)
    model = run.model()
    items = as_items(cfg, bundle.splits["test"])
    metrics = {
        **metrics,
        **{
            k: score(model, items, bundle.label_names, without=k.removeprefix("test_without_"))
            for k in wanted
            if k not in metrics
        },
    }
    run.write_metrics(metrics)
    return metrics


class Executor(Protocol):
    """Somewhere else to train runs: ``run`` trains each (config, run directory) there and
    returns once all are finished (raising if any failed)."""

    name: str

    def run(self, runs: list[tuple[RunConfig, Path]], device: str | None) -> None: ...


def run_experiment(
    config: str | Path | RunConfig,
    out_dir: str | Path,
    seeds: list[int],
    overrides: list[str] | None = None,
    folds: list[str] | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
    config_name: str | None = None,
    device: str | None = None,
    reuse: dict[str, Any] | None = None,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Train every (fold, seed) on ``device`` (see train); write and return the summary.
    ``reuse``: an earlier summary whose runs of this config on this data count as finished
    (see reusable_runs); a finished run directory still comes first. ``executor``: where
    the runs still to train go (``lpgnet.experiments.cluster``: Slurm or local jobs, each
    writing its run directory); by default they train here, one after another."""
    ctx = distributed.from_env()  # under torchrun every process trains each run together
    say = log or (lambda m: print(m, file=sys.stderr))
    if not ctx.main:
        say = lambda m: None  # noqa: E731 - rank 0 alone reports
    resolve_device(device)  # a device that is not there: say so before any data is built
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds {seeds}: expected a non-empty list of distinct seeds")
    if folds is not None and (not folds or len(set(folds)) != len(folds)):
        raise ConfigError(f"folds {folds}: expected a non-empty list of distinct folds")
    base = config if isinstance(config, RunConfig) else load_config(config, overrides)
    apply_threads(base)  # before any data is built: text features are computed here, not in train()
    out = Path(out_dir)
    kept = reusable_runs(reuse, base)
    # 1. what is finished (a run directory, or the earlier summary) and what is to train
    plan: list[tuple[str | None, int, RunConfig, Path, Any, dict[str, Any] | None]] = []
    bundle = None
    for fold in folds or [None]:
        bundle = None
        for seed in seeds:
            cfg = copy.deepcopy(base)
            cfg.train.seed = seed
            if fold is not None:
                cfg.data.protocol = fold
            cfg.validate()
            run_dir = out / fold / f"seed-{seed}" if fold else out / f"seed-{seed}"
            # The data (and its cached text features) do not depend on the seed when the
            # validation carve is fixed: load once per fold.
            if bundle is None or cfg.data.valid_seed is None:
                with distributed.main_first(ctx):  # rank 0 fills the feature cache, the others read it
                    bundle = load_data(cfg, say)
            resolved = copy.deepcopy(cfg)
            resolve_model_config(resolved, bundle)
            resolve_speakers(resolved, bundle)
            metrics = None
            if ctx.main:  # rank 0 reads and writes run directories; the others follow its answer
                metrics = _finished(run_dir, resolved, bundle.fingerprint, overwrite)
                if metrics is not None:
                    metrics = add_missing_modality_scores(run_dir, resolved, bundle, metrics)
            metrics = ctx.gather(metrics)[0]
            earlier = kept.get((fold, seed))
            name = f"{fold + ' ' if fold else ''}seed {seed}"
            if metrics is None and earlier is not None and earlier["data_sha256"] == bundle.fingerprint:
                say(f"--- {name}: finished in the earlier summary, reused (no run directory)")
                metrics = {"earlier": earlier}
            elif metrics is not None:
                say(f"--- {name}: finished run in {run_dir}, reused")
            plan.append((fold, seed, cfg, run_dir, bundle, metrics))
    # 2. train what is missing: here, one after another, or as jobs of an executor
    todo = [k for k, (*_, metrics) in enumerate(plan) if metrics is None]
    if executor is not None and todo:
        say(f"{len(todo)} run{'s' if len(todo) > 1 else ''} to train, handed to {executor.name}")
        executor.run([(plan[k][2], plan[k][3]) for k in todo], device)
    for k in todo:
        fold, seed, cfg, run_dir, bundle, _ = plan[k]
        if executor is None:
            say(f"--- {fold + ' ' if fold else ''}seed {seed} -> {run_dir}")
            metrics = train(
                cfg, out_dir=run_dir, overwrite=True, data=copy.deepcopy(bundle), log=log, device=device
            ).metrics
        else:
            metrics = RunDir(run_dir).metrics()
        plan[k] = (fold, seed, cfg, run_dir, None, metrics)  # the data is not needed any more
    # 3. the summary
    rows: list[dict[str, Any]] = []
    per_fold: dict[str, Any] = {}
    for fold in folds or [None]:
        fold_rows = [
            m["earlier"] if "earlier" in m else _row(m, seed, fold)
            for f, seed, _, _, _, m in plan
            if f == fold  # type: ignore[operator]
        ]
        rows += fold_rows
        if fold is not None:
            per_fold[fold] = summarize(fold_rows)
    summary: dict[str, Any] = {
        "config": str(config_name or (config if not isinstance(config, RunConfig) else "(in memory)")),
        "overrides": list(overrides or []),
        "config_yaml": dump_config(base),  # what `lpgnet report` checks a manifest row against
        "model": base.model.name,
        "seeds": seeds,
        "folds": folds,
        "runs": rows,
    }
    if folds:
        summary["per_fold"] = per_fold
        # Mean over folds of each fold's seed-mean (each fold weighs the same).
        summary["mean_over_folds"] = {
            split: {k: mean_std([per_fold[f][split][k]["mean"] for f in folds]) for k in SCALARS}
            for split in ("valid", "test")
        }
    summary.update(summarize(rows))
    if ctx.main:
        write_json(out / "summary.json", summary)
    return summary


def run_manifest_rows(
    tables: list[Table],
    src: Sources,
    only: list[str] | None,
    shard: tuple[int, int],
    log: Callable[[str], None] | None,
    say: Callable[[str], None],
    device: str | None = None,
    executor: Executor | None = None,
) -> None:
    """``lpgnet report --run``: train every manifest row (of ``only``, of this shard) that
    no current summary answers; each row resumes from its run directory and the record.
    With ``executor``, each row's missing runs are jobs (run in parallel)."""
    resolve_device(device)  # a device that is not there: say so before any data is built
    todo = [(t, r) for t in tables if not only or t.id in only for r in t.rows if not r.same_as]
    # every split any row shows of an experiment (same_as rows may show other ones)
    shown: dict[Path, set[str]] = {}
    for t in tables:
        for r in t.rows:
            shown.setdefault(row_dir(src.runs, t, r), set()).add(r.split)
    for t, r in todo[shard[0] :: shard[1]]:
        out = row_dir(src.runs, t, r)
        summary, _ = current_summary(src, t, r)
        if summary is None or not shown[out] <= set(summary):
            say(f"=== {t.id} / {r.name}: {command(r, out)}")
            run_experiment(
                r.config,
                out,
                list(range(r.seeds)),
                overrides=r.set,
                folds=row_folds(r),
                log=log,
                config_name=r.config,
                device=device,
                reuse=read_summary_file(src.record_path(t, r)),
                executor=executor,
            )
