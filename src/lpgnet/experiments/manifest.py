"""The results manifest (``experiments/iemocap.yaml``): which tables the results page has,
each row exactly one ``lpgnet experiment`` command, plus benchmarks and targets. Read as
strictly as a config: an unknown key or a wrong type is an error naming the key."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ..config import from_dict
from ..errors import ConfigError


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
    # a study row that changes one thing from another row of its table (that row's key):
    # the page compares their selection scores, paired by seed, and says whether the change
    # is adopted (the table's adopt_at)
    base: str | None = None


@dataclass
class Table:
    id: str
    title: str
    rows: list[Row]
    note: str = ""
    # study: validation columns first; selection: how well each row's selection score
    # tracks its test score across its runs; retrain: a cross-validated row's final
    # retrain against its own fold models on test
    kind: Literal["main", "study", "per_class", "selection", "retrain"] = "main"
    # study: a change is adopted when it raises the mean selection wF1 of its base (over
    # the seeds both have) by at least this much
    adopt_at: float = 0.005


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass
class Benchmark:
    """A benchmark script's JSON output, shown as a table with the command that wrote it."""

    title: str
    kind: Literal[
        "train_speed",
        "text_features",
        "bench",
        "serve_load",
        "frame_cost",
        "threads",
        "dialogue_memory",
        "analyze",
        "scale",
        "corpus_memory",
    ]
    file: str
    command: str
    note: str = ""


@dataclass
class Target:
    """A figure the project promises: a row's test mean (minus another row's) >= at_least,
    or the spread of its runs (``statistic: std``, one row) <= at_most."""

    text: str
    row: str  # "table/row-key"
    metric: str = "accuracy"
    at_least: float = 0.0
    minus: str | None = None  # another "table/row-key": the target is on the difference
    statistic: Literal["mean", "std"] = "mean"  # std: the sample std over the row's runs
    at_most: float | None = None  # for statistic std: the largest spread the target allows


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
        for r in table.rows:
            if r.base is not None and table.kind != "study":
                raise ConfigError(f"{path}: table {table.id}: row {r.name!r}: base is for tables of kind study")
            if r.base is not None and (r.base not in keys or r.base == r.key):
                raise ConfigError(
                    f"{path}: table {table.id}: row {r.name!r}: base {r.base!r} names no other row of the table"
                )
        if table.adopt_at < 0:
            raise ConfigError(f"{path}: table {table.id}: adopt_at: expected a gain >= 0, got {table.adopt_at}")
    rows = {f"{t.id}/{r.key}": r for t in tables for r in t.rows}
    for t in tables:
        for r in t.rows:
            if r.same_as:
                if r.same_as not in rows:
                    raise ConfigError(f"{path}: table {t.id}: row {r.name!r}: same_as {r.same_as!r} names no row")
                src = rows[r.same_as]
                r.config, r.set, r.seeds, r.folds = src.config, src.set, src.seeds, src.folds
    for i, target in enumerate(manifest.targets):
        where = f"{path}: targets[{i}] ({target.text!r})"
        if target.statistic == "std" and (target.minus or target.at_most is None):
            raise ConfigError(f"{where}: statistic std: expected one row (no minus) and an at_most")
        if target.statistic == "mean" and target.at_most is not None:
            raise ConfigError(f"{where}: at_most is for statistic std; a mean uses at_least")
    meta = {
        "runs_dir": manifest.runs_dir,
        "preamble": manifest.preamble,
        "postscript": manifest.postscript,
        "benchmarks": manifest.benchmarks,
        "targets": manifest.targets,
        "record_dir": manifest.record_dir,
    }
    return meta, tables


def row_dir(runs: Path, table: Table, row: Row) -> Path:
    """Where a row's experiment writes its runs and summary.json."""
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


def row_folds(row: Row) -> list[str] | None:
    """The protocols of a row's leave-one-out folds (as run_experiment names them), or None."""
    return [f"loso-{g}" for g in row.folds] if row.folds else None


def wanted_runs(row: Row) -> set[tuple[str | None, int]]:
    """The (fold, seed) pairs a row's experiment trains."""
    return {(f, s) for f in row_folds(row) or [None] for s in range(row.seeds)}
