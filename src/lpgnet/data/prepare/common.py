"""``lpgnet prepare``: raw corpora -> the generic conversation format (data/jsonl.py).

Three sources, one function each: the IEMOCAP release folder (``prepare_iemocap``), the
MELD.Raw folder (``prepare_meld``) and a plain CSV table anyone can write
(``prepare_table``). Each writes, into one output folder:

- ``utterances.jsonl``: one utterance per line, ordered by dialogue then turn, with
  ``audio_path`` the absolute path of the recording (feature extraction decodes it later);
- ``splits.json``: the corpus's protocol(s), read by ``data.splits`` / ``data.protocol``;
- ``prepare-report.json``: counts, the problems met (per kind, with the first examples)
  and notes such as lines that were ignored on purpose.

Why the care with bad input: a raw corpus on someone's disk is rarely intact (an
unzipped-halfway folder, a hand-edited transcript). Every problem names the file, the
line where there is one, and the utterance id. By default the bad utterance is skipped
and counted, so one broken clip does not block a 10,000-utterance corpus; with
``strict`` the first problem stops everything. A missing root, a missing metadata file or
a missing required column is always fatal: nothing sensible can be written without them.

Nothing partial lands in the output folder: everything is written into a hidden
temporary folder beside it and renamed into place at the end; an existing non-empty
output folder is only replaced with ``overwrite``, and only once the new one is complete.

Audio is checked for existence only, never decoded: extraction does that, and opening
10,000 files here would make preparation slow for no gain.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import DataError, RunDirError
from ...files import write_json, write_text
from ..problems import Problems

UTTERANCES_FILE = "utterances.jsonl"
SPLITS_FILE = "splits.json"
REPORT_FILE = "prepare-report.json"
EXAMPLES_PER_KIND = 20  # examples kept per problem kind in prepare-report.json
SHOWN_PER_KIND = 3  # ... and printed in the summary

PROBLEM_KINDS = {
    "malformed_line": "a line or row that cannot be parsed",
    "missing_transcription": "a labelled utterance with no transcript line",
    "missing_label": "a transcribed utterance with no label line",
    "missing_audio": "an utterance whose recording is not on disk",
    "duplicate": "an utterance or turn that appears twice (the first is kept)",
    "unreadable_file": "a metadata file that cannot be read",
}


# ----------------------------------------------------------------------------- shared


class CorpusProblems(Problems):
    """Problems of a raw corpus: one of ``PROBLEM_KINDS``, where, and which utterance."""

    def __init__(self, strict: bool) -> None:
        super().__init__(strict, EXAMPLES_PER_KIND, strict_hint=" (--strict stops at the first problem)")

    def add_at(self, kind: str, where: str | Path, utt_id: str | None, what: str) -> None:
        assert kind in PROBLEM_KINDS, kind
        self.add(kind, f"{where}: {utt_id}: {what}" if utt_id else f"{where}: {what}")


@dataclass
class Prepared:
    """What a preparation wrote: the summary the command line prints comes from here."""

    corpus: str
    out: Path
    utterances: int
    dialogues: int
    problems: CorpusProblems
    protocols: dict[str, dict[str, int]] = field(default_factory=dict)  # protocol -> split -> dialogues
    notes: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        lines = [f"{self.corpus}: wrote {self.utterances} utterances in {self.dialogues} dialogues to {self.out}"]
        for name, splits in self.protocols.items():
            lines.append(f"  protocol {name!r}: " + ", ".join(f"{s} {n} dialogues" for s, n in splits.items()))
        if not self.protocols:
            lines.append(
                f"  no {SPLITS_FILE}: no split information in the input (use a loso-<group> protocol or write one)"
            )
        lines += [f"  note: {n}" for n in self.notes]
        skipped = sum(self.problems.counts.values())
        if skipped:
            lines.append(f"  {skipped} problem(s) found and skipped; details in {self.out / REPORT_FILE}:")
            for kind, n in sorted(self.problems.counts.items()):
                lines.append(f"    {kind}: {n}")
                lines += [f"      e.g. {m}" for m in self.problems.examples[kind][:SHOWN_PER_KIND]]
        else:
            lines.append("  no problems found")
        return lines


def decode_text(data: bytes) -> tuple[str, int]:
    """Decode a metadata file as UTF-8, reading any byte that is not valid UTF-8 as Windows-1252.

    Why: the MELD CSVs are UTF-8 but hold some raw Windows-1252 bytes (curly quotes such
    as 0x92 for an apostrophe); a plain ``utf-8`` decode fails on them and a plain
    ``cp1252`` decode garbles every genuine multi-byte character. Decoding line by line
    and repairing only the offending bytes keeps both. Returns the text and the number of
    lines that needed a repair (reported as a note, not a problem). A leading BOM is dropped.
    """
    lines, repaired = [], 0
    for raw in data.split(b"\n"):
        try:
            lines.append(raw.decode("utf-8"))
            continue
        except UnicodeDecodeError:
            repaired += 1
        parts, pos = [], 0
        while pos < len(raw):
            try:
                parts.append(raw[pos:].decode("utf-8"))
                break
            except UnicodeDecodeError as exc:
                parts.append(raw[pos : pos + exc.start].decode("utf-8"))
                parts.append(raw[pos + exc.start : pos + exc.end].decode("cp1252", errors="replace"))
                pos += exc.end
        lines.append("".join(parts))
    return "\n".join(lines).removeprefix("\ufeff"), repaired


def read_metadata(path: Path, problems: CorpusProblems, notes: Counter[str]) -> str | None:
    """The decoded text of a transcript / label / CSV file, or None (counted) when unreadable."""
    try:
        text, repaired = decode_text(path.read_bytes())
    except OSError as exc:
        problems.add_at("unreadable_file", path, None, f"cannot read ({exc.strerror or exc})")
        return None
    if repaired:
        notes["lines with non-UTF-8 bytes read as Windows-1252"] += repaired
    return text


def check_root(root: str | Path, what: str) -> Path:
    """The corpus root as an absolute path; fatal when it is missing or not a folder."""
    path = Path(os.path.abspath(root))
    if not path.is_dir():
        raise DataError(
            f"{root}: {what} folder not found" if not path.exists() else f"{root}: not a folder ({what} expected)"
        )
    try:
        next(path.iterdir(), None)
    except OSError as exc:
        raise DataError(f"{root}: cannot read the {what} folder ({exc.strerror or exc})") from None
    return path


def check_out(out: str | Path, overwrite: bool, source: Path | None = None) -> Path:
    """Refuse an existing non-empty output folder unless ``overwrite`` (checked before any work),
    and always refuse one that holds the input (``--overwrite`` would delete the corpus)."""
    out = Path(os.path.abspath(out))
    if source is not None and (out == source or out in source.parents):
        raise RunDirError(f"{out}: the output folder would contain the input {source}; choose another --out")
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise RunDirError(f"{out}: folder exists and is not empty (pass --overwrite to replace it)")
    return out


def write_output(
    out: Path,
    rows: list[dict[str, Any]],
    protocols: dict[str, dict[str, list[str]]] | None,
    report: dict[str, Any],
    overwrite: bool,
    source: Path,
) -> None:
    """Write the three files into a hidden folder beside ``out``, then rename it into place.

    An existing ``out`` is moved aside only after the new folder is complete, and removed
    after the rename, so an interruption never leaves a half-written output behind.
    """
    check_out(out, overwrite, source)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.prepare-{secrets.token_hex(4)}"
    tmp.mkdir()  # mkdir (unlike mkdtemp) gives the usual permissions
    try:
        write_text(tmp / UTTERANCES_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        if protocols is not None:
            write_json(tmp / SPLITS_FILE, protocols)
        write_json(tmp / REPORT_FILE, report)
        check_out(out, overwrite, source)  # again: something may have appeared there meanwhile
        if out.is_dir() and any(out.iterdir()):
            old = out.parent / f".{out.name}.old-{secrets.token_hex(4)}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if out.is_dir():
                out.rmdir()
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def finish(
    corpus: str,
    source: Path,
    out: Path,
    rows: list[dict[str, Any]],
    protocols: dict[str, dict[str, list[str]]] | None,
    problems: CorpusProblems,
    notes: Counter[str],
    overwrite: bool,
    extra_notes: Iterable[str] = (),
) -> Prepared:
    """Common ending: refuse an empty result, write the folder, build the summary."""
    if not rows:
        first = next((e[0] for e in problems.examples.values() if e), None)
        raise DataError(f"{source}: no utterance could be prepared" + (f" (first problem: {first})" if first else ""))
    dialogues = len({r["dialog_id"] for r in rows})
    note_lines = [*extra_notes, *(f"{k}: {n}" for k, n in sorted(notes.items()))]
    report = {
        "corpus": corpus,
        "source": str(source),
        "utterances": len(rows),
        "dialogues": dialogues,
        "skipped": dict(sorted(problems.counts.items())),
        "examples": problems.examples,
        "problem_kinds": PROBLEM_KINDS,
        "notes": note_lines,
        "protocols": {p: {s: len(ids) for s, ids in splits.items()} for p, splits in (protocols or {}).items()},
    }
    write_output(out, rows, protocols, report, overwrite, source)
    return Prepared(corpus, out, len(rows), dialogues, problems, report["protocols"], note_lines)


def renumber(rows: list[dict[str, Any]], key: Any, dialog_key: Any = str) -> list[dict[str, Any]]:
    """Sort each dialogue by ``key`` and set ``turn`` to the 0-based position; dialogues sorted by ``dialog_key``.

    Turns count the utterances actually written, so they are contiguous even when a bad
    utterance was skipped.
    """
    by_dialog: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_dialog.setdefault(r["dialog_id"], []).append(r)
    result = []
    for dialog_id in sorted(by_dialog, key=dialog_key):
        for turn, r in enumerate(sorted(by_dialog[dialog_id], key=key)):
            r["turn"] = turn
            result.append(r)
    return result


def int_or_none(value: str | None) -> int | None:
    try:
        return int((value or "").strip())
    except ValueError:
        return None


def read_csv_rows(
    path: Path, required: Iterable[str], problems: CorpusProblems, notes: Counter[str]
) -> list[tuple[int, dict[str, str]]]:
    """(line number, row) for a CSV read with the csv module; header names stripped.

    A missing file or a missing required column is fatal (it concerns every row); a row
    with the wrong number of fields is malformed. The line number is where the row starts
    (a quoted field may span lines).
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        text, repaired = decode_text(path.read_bytes())
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if repaired:
        notes[f"lines of {path.name} with non-UTF-8 bytes read as Windows-1252"] += repaired
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(
            f"{path}: missing column {', '.join(repr(c) for c in missing)} (has: {', '.join(header) or 'nothing'})"
        )
    rows, start = [], reader.line_num + 1
    for fields in reader:
        if any(f.strip() for f in fields):
            if len(fields) != len(header):
                problems.add_at(
                    "malformed_line", f"{path}:{start}", None, f"{len(fields)} fields, the header has {len(header)}"
                )
            else:
                rows.append((start, dict(zip(header, fields))))
        start = reader.line_num + 1
    return rows
