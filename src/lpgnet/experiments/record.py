"""The record: committed copies of every summary the results page shows.

Run directories are large and stay out of git, so a page generated from them alone could
not be regenerated on another machine. A manifest's ``record_dir`` keeps a copy of every
summary the page shows (metrics only, no data): a row is read from its run directory
when that is current, else from the record, and the record is refreshed from current run
directories after the page is written. A summary that no longer answers its row (its
config, seeds or folds changed) is never shown as if it were the row's result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import load_config, same_config
from ..files import write_json
from .manifest import Row, Table, read_manifest, row_dir, row_folds, wanted_runs


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
        return row_dir(self.runs, table, row) / "summary.json"

    def record_path(self, table: Table, row: Row) -> Path | None:
        if self.record is None:
            return None
        ref = row.same_as or f"{table.id}/{row.key}"
        return self.record / f"{ref}.json"


def read_summary_file(path: Path | None) -> dict[str, Any] | None:
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
        s = read_summary_file(path)
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
    hint = (
        "`lpgnet report --run` completes it (finished seeds are reused, missing scores computed from their weights)"
        if "config" not in why
        else "move the old directory (and its record) away, then `lpgnet report --run`"
    )
    return None, f"out of date: {why}; {hint}"


def sources(meta: dict[str, Any], runs_dir: str | Path | None, use_record: bool) -> Sources:
    record = meta.get("record_dir")
    return Sources(Path(runs_dir or meta.get("runs_dir", "runs")), Path(record) if record and use_record else None)


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
    src = sources(meta, runs_dir, True)
    written: list[Path] = []
    if src.record is None:
        return written
    for t in tables:
        for r in t.rows:
            if r.same_as:
                continue
            s = read_summary_file(src.run_path(t, r))
            target = src.record_path(t, r)
            assert target is not None
            old = read_summary_file(target)
            if not _keep(r, s, old):
                continue
            if old != s:
                write_json(target, s)
                written.append(target)
    return written
