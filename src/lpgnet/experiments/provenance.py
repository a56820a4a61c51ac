"""The page's provenance section: for every row it shows, what that row's runs say they
were trained on -- data SHA-256, device, torch version, training time -- read from the
runs themselves, not typed into the preamble.

Why: two rows are only comparable if they saw the same data, and a CPU run's figures
depend on the torch build; a reader should be able to check that per row. Runs from
before the runner recorded a field say so ("not recorded for k of N runs") instead of
being silently mixed with the rest; a row whose runs disagree lists every value.
"""

from __future__ import annotations

from typing import Any

from .record import Sources

TITLE = "Provenance of the record"
# (run field, column head, how many characters of it to show)
FIELDS = (("data_sha256", "data SHA-256 (first 12 hex)", 12), ("device", "device", None), ("torch", "torch", None))


def _field(runs: list[dict[str, Any]], key: str, width: int | None) -> str:
    """One field over a row's runs: its value when they agree, every value when they do
    not, and how many runs lack it."""
    values = [r.get(key) for r in runs]
    missing = sum(not v for v in values)
    if missing == len(values):
        return "not recorded"
    text = ", ".join(sorted({str(v)[:width] for v in values if v}))
    return text + (f" (not recorded for {missing} of {len(values)} runs)" if missing else "")


def _complete(runs: list[dict[str, Any]]) -> bool:
    return all(r.get(key) for r in runs for key, _, _ in FIELDS)


def render_provenance(done: list[tuple[str, dict[str, Any]]], src: Sources) -> str:
    """The section's Markdown for the rows that have runs: (``table/key``, summary) pairs."""
    rows: list[tuple[bool, list[str]]] = []
    for ref, s in done:
        runs = s["runs"]
        minutes = sum(x.get("train_seconds", 0.0) for x in runs) / 60
        cells = [ref, str(len(runs))] + [_field(runs, k, w) for k, _, w in FIELDS]
        rows.append((_complete(runs), cells + [f"{minutes:.1f}"]))
    full = sum(ok for ok, _ in rows)
    where = f"`{src.record}/<table>/<row>.json`" if src.record else "`<runs_dir>/<table>/<row>/summary.json`"
    head = ["row (table/key)", "runs"] + [h for _, h, _ in FIELDS] + ["training minutes (sum over runs)"]
    lines = [
        f"### {TITLE}",
        "",
        f"What each row's runs recorded about how they were trained. {full} of {len(rows)} rows record "
        "data, device and torch version for every run; a field a run lacks is counted, not guessed (a run "
        "trained before the runner recorded it; synthetic data, which has no file to hash). The data hash is "
        "the utterances file's SHA-256 combined with the splits file's where the protocol reads one (a "
        "leave-one-session-out row does not, so its hash differs from the session-5 rows'). The full resolved config and the `--set` overrides of each row "
        f"(thread count included) are in {where} (`config_yaml`, `overrides`).",
        "",
        "| " + " | ".join(head) + " |",
        "|---" * len(head) + "|",
    ]
    lines += ["| " + " | ".join(cells) + " |" for _, cells in rows]
    return "\n".join(lines + [""])
