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

import argparse
import csv
import io
import json
import os
import re
import secrets
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from .errors import DataError, RunDirError
from .files import write_json, write_text

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


class Problems:
    """Collects what is wrong with the input: counted and skipped, or fatal when strict."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}

    def add(self, kind: str, where: str | Path, utt_id: str | None, what: str) -> None:
        assert kind in PROBLEM_KINDS, kind
        message = f"{where}: {utt_id}: {what}" if utt_id else f"{where}: {what}"
        if self.strict:
            raise DataError(f"{message} (--strict stops at the first problem)")
        self.counts[kind] += 1
        examples = self.examples.setdefault(kind, [])
        if len(examples) < EXAMPLES_PER_KIND:
            examples.append(message)


@dataclass
class Prepared:
    """What a preparation wrote: the summary the command line prints comes from here."""

    corpus: str
    out: Path
    utterances: int
    dialogues: int
    problems: Problems
    protocols: dict[str, dict[str, int]] = field(default_factory=dict)  # protocol -> split -> dialogues
    notes: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        lines = [f"{self.corpus}: wrote {self.utterances} utterances in {self.dialogues} dialogues to {self.out}"]
        for name, splits in self.protocols.items():
            lines.append(f"  protocol {name!r}: " + ", ".join(f"{s} {n} dialogues" for s, n in splits.items()))
        if not self.protocols:
            lines.append(f"  no {SPLITS_FILE}: no split information in the input (use a loso-<group> protocol or write one)")
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


def read_metadata(path: Path, problems: Problems, notes: Counter[str]) -> str | None:
    """The decoded text of a transcript / label / CSV file, or None (counted) when unreadable."""
    try:
        text, repaired = decode_text(path.read_bytes())
    except OSError as exc:
        problems.add("unreadable_file", path, None, f"cannot read ({exc.strerror or exc})")
        return None
    if repaired:
        notes["lines with non-UTF-8 bytes read as Windows-1252"] += repaired
    return text


def check_root(root: str | Path, what: str) -> Path:
    """The corpus root as an absolute path; fatal when it is missing or not a folder."""
    path = Path(os.path.abspath(root))
    if not path.is_dir():
        raise DataError(f"{root}: {what} folder not found" if not path.exists() else f"{root}: not a folder ({what} expected)")
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
    out: Path, rows: list[dict[str, Any]], protocols: dict[str, dict[str, list[str]]] | None,
    report: dict[str, Any], overwrite: bool, source: Path,
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
    corpus: str, source: Path, out: Path, rows: list[dict[str, Any]], protocols: dict[str, dict[str, list[str]]] | None,
    problems: Problems, notes: Counter[str], overwrite: bool, extra_notes: Iterable[str] = (),
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


# ----------------------------------------------------------------------------- IEMOCAP

IEMOCAP_CODES = {"neu", "fru", "sad", "sur", "ang", "hap", "exc", "fea", "dis", "oth", "xxx"}
LABEL4 = {"ang": "ang", "hap": "hap", "exc": "hap", "neu": "neu", "sad": "sad"}  # the standard 4 classes, excited merged
LABEL6 = {"hap", "sad", "neu", "ang", "exc", "fru"}  # the 6 classes of the ERC literature
# An ordinary utterance id: Ses01F_impro90_F000 = dialogue Ses01F_impro90, speaker F, number 000.
# Overlap lines (Ses01F_impro90_MX..., "M: ...") do not match and are ignored on purpose.
IEMOCAP_UTT = re.compile(r"(Ses(\d\d)[FM]_\S+)_([FM])\d{3}")
IEMOCAP_LABEL_LINE = re.compile(r"\[\s*([0-9.]+)\s*-\s*([0-9.]+)\s*\]\s+(\S+)\s+(\S+)\s+\[.*\]\s*")
IEMOCAP_TRANSCRIPT_LINE = re.compile(r"([^\s\[]+)\s*\[[^\]]*\]:\s?(.*)")


@dataclass
class _Label:
    utt_id: str
    dialog_id: str
    session: int
    speaker: str
    code: str
    start: float
    end: float
    file: Path
    line: int
    session_dir: Path


def _iemocap_labels(session_dir: Path, problems: Problems, notes: Counter[str], seen: dict[str, str],
                    bad_ids: set[str]) -> list[_Label]:
    """The label lines of one session: ``[start - end] <tab> utt_id <tab> code <tab> [V, A, D]``.

    Every other line (header, ``C-E1:`` / ``A-E1:`` annotator lines, blank) is ignored;
    a line that starts with ``[`` but does not parse is malformed.
    """
    labels = []
    folder = session_dir / "dialog" / "EmoEvaluation"
    for path in sorted(p for p in folder.glob("*.txt") if not p.name.startswith(".")):  # "._x.txt": macOS debris
        text = read_metadata(path, problems, notes)
        if text is None:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.startswith("["):
                continue
            where = f"{path}:{lineno}"
            m = IEMOCAP_LABEL_LINE.fullmatch(line.strip())
            id_match = IEMOCAP_UTT.search(line)
            utt_id = m.group(3) if m else (id_match.group(0) if id_match else None)
            if utt_id:
                bad_ids.add(utt_id)  # until proven good: a bad label line must not also count as "missing label"
            if not m:
                problems.add("malformed_line", where, utt_id, "expected '[start - end] <tab> utterance id <tab> code <tab> [V, A, D]'")
                continue
            u = IEMOCAP_UTT.fullmatch(utt_id)
            code = m.group(4)
            try:
                start, end = float(m.group(1)), float(m.group(2))
            except ValueError:
                start = end = -1.0
            if not u:
                problems.add("malformed_line", where, utt_id, "not an utterance id like Ses01F_impro90_F000")
            elif u.group(1) != path.stem:
                problems.add("malformed_line", where, utt_id, f"utterance of dialogue {u.group(1)!r} in the file of {path.stem!r}")
            elif code not in IEMOCAP_CODES:
                problems.add("malformed_line", where, utt_id, f"unknown emotion code {code!r} (expected one of {' '.join(sorted(IEMOCAP_CODES))})")
            elif not 0 <= start <= end:
                problems.add("malformed_line", where, utt_id, f"bad time span [{m.group(1)} - {m.group(2)}]")
            elif utt_id in seen:
                problems.add("duplicate", where, utt_id, f"labelled twice (first at {seen[utt_id]})")
            else:
                seen[utt_id] = where
                bad_ids.discard(utt_id)
                session = int(u.group(2))
                labels.append(_Label(utt_id, u.group(1), session, f"Ses{u.group(2)}_{u.group(3)}", code, start, end,
                                     path, lineno, session_dir))
    return labels


def _iemocap_transcripts(path: Path, problems: Problems, notes: Counter[str]) -> dict[str, tuple[str, int]] | None:
    """utterance id -> (text, line number) from one transcription file (``Ses01F_impro90_F000 [006.2500-008.5000]: Pardon, one moment.``).

    Lines whose first word is not an ordinary utterance id (overlaps such as
    ``Ses01F_impro90_MX..`` or ``M: ...``) are ignored and counted in the notes.
    None when the file is missing or unreadable.
    """
    if not path.exists():
        return None
    text = read_metadata(path, problems, notes)
    if text is None:
        return None
    found: dict[str, tuple[str, int]] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        first = line.split(maxsplit=1)[0]
        if not IEMOCAP_UTT.fullmatch(first.split("[")[0]):
            notes["transcript lines that are not utterances (overlaps, speaker-only lines), ignored"] += 1
            continue
        m = IEMOCAP_TRANSCRIPT_LINE.fullmatch(line.rstrip("\r"))
        if not m:
            problems.add("malformed_line", f"{path}:{lineno}", first.split("[")[0], "expected 'utterance id [start-end]: text'")
            continue
        utt_id = m.group(1)
        if utt_id in found:
            problems.add("duplicate", f"{path}:{lineno}", utt_id, f"transcribed twice (first on line {found[utt_id][1]})")
            continue
        found[utt_id] = (m.group(2).strip(), lineno)
    return found


def prepare_iemocap(root: str | Path, out: str | Path, strict: bool = False, overwrite: bool = False) -> Prepared:
    """IEMOCAP_full_release -> utterances.jsonl + splits.json (protocol ``session5``).

    Reads ``Session*/dialog/EmoEvaluation/*.txt`` (labels and times),
    ``Session*/dialog/transcriptions/<dialogue>.txt`` (text) and checks that
    ``Session*/sentences/wav/<dialogue>/<utterance>.wav`` exists. Utterances are ordered
    by start time within their dialogue. ``speaker`` is ``Ses01_F`` style: session plus the
    letter that starts the utterance id's last part (the actor speaking; the letter in the
    dialogue name only says who wore the motion-capture markers).
    """
    problems, notes = Problems(strict), Counter[str]()
    root = check_root(root, "IEMOCAP_full_release")
    out = check_out(out, overwrite, root)
    sessions = sorted(p for p in root.glob("Session*") if (p / "dialog" / "EmoEvaluation").is_dir())
    if not sessions:
        raise DataError(f"{root}: no Session*/dialog/EmoEvaluation folder: not an IEMOCAP_full_release folder")
    seen: dict[str, str] = {}
    bad_ids: set[str] = set()
    labels = [lab for s in sessions for lab in _iemocap_labels(s, problems, notes, seen, bad_ids)]

    rows = []
    transcripts: dict[Path, dict[str, tuple[str, int]] | None] = {}
    for lab in labels:
        t_path = lab.session_dir / "dialog" / "transcriptions" / f"{lab.dialog_id}.txt"
        if t_path not in transcripts:
            transcripts[t_path] = _iemocap_transcripts(t_path, problems, notes)
        found = transcripts[t_path]
        where = f"{lab.file}:{lab.line}"
        if found is None or lab.utt_id not in found:
            why = "no readable transcription file" if found is None else "no line for it in"
            problems.add("missing_transcription", where, lab.utt_id, f"{why} {t_path}")
            continue
        wav = lab.session_dir / "sentences" / "wav" / lab.dialog_id / f"{lab.utt_id}.wav"
        if not wav.is_file():
            problems.add("missing_audio", where, lab.utt_id, f"no recording at {wav}")
            continue
        rows.append({
            "utt_id": lab.utt_id, "dialog_id": lab.dialog_id, "turn": 0, "session": lab.session, "speaker": lab.speaker,
            "text": found[lab.utt_id][0], "label": lab.code, "label4": LABEL4.get(lab.code),
            "label6": lab.code if lab.code in LABEL6 else None, "start": lab.start, "end": lab.end, "audio_path": str(wav),
        })
    labelled = {lab.utt_id for lab in labels}
    for t_path, found in transcripts.items():
        for utt_id, (_, lineno) in (found or {}).items():
            if utt_id not in labelled and utt_id not in bad_ids:
                problems.add("missing_label", f"{t_path}:{lineno}", utt_id, "transcribed but has no label line in dialog/EmoEvaluation")

    rows = renumber(rows, key=lambda r: (r["start"], r["utt_id"]))
    dialog_session = {r["dialog_id"]: r["session"] for r in rows}
    protocols = {"session5": {
        "train": [d for d, s in dialog_session.items() if s != 5],
        "test": [d for d, s in dialog_session.items() if s == 5],
    }}
    return finish("iemocap", root, out, rows, protocols, problems, notes, overwrite,
                  ["protocol session5: sessions 1-4 train (carve validation from it), session 5 test; "
                   "leave-one-session-out: data.protocol loso-<session>"])


# ----------------------------------------------------------------------------- MELD

MELD_SPLITS = {"train": "train", "dev": "valid", "test": "test"}  # MELD's name -> the splits.json key
MELD_EMOTIONS = {"neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"}
MELD_SENTIMENTS = {"positive", "negative", "neutral"}
MELD_COLUMNS = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")
# Where MELD's archives put the clips, per split, searched in this order under the root and
# under <root>/<split>/ (train.tar.gz unpacks to train/train_splits/, and people often move
# the inner folder up). The first folder holding dia{D}_utt{U}.mp4 wins.
MELD_CLIP_FOLDERS = {
    "train": ("train_splits", "train_splits_complete"),
    "dev": ("dev_splits_complete", "dev_splits"),
    "test": ("output_repeated_splits_test", "test_splits_complete", "test_splits"),
}


def find_ffmpeg() -> str | None:
    """ffmpeg decodes MELD's mp4 clips at extraction time; without it only text is usable."""
    return shutil.which("ffmpeg")


def meld_clip_folders(root: Path, split: str) -> list[Path]:
    """The existing folders that may hold the clips of one MELD split, in search order."""
    names = MELD_CLIP_FOLDERS[split]
    candidates = [root / n for n in names] + [root / split / n for n in names] + [root / split]
    return [c for c in candidates if c.is_dir()]


def _meld_time(value: str | None) -> float | None:
    """'00:16:16,059' -> 976.059 seconds; None when absent or not in that form."""
    m = re.fullmatch(r"(\d+):(\d\d):(\d\d)[,.](\d+)", (value or "").strip())
    if not m:
        return None
    h, mi, s, frac = m.groups()
    return round(int(h) * 3600 + int(mi) * 60 + int(s) + int(frac) / 10 ** len(frac), 3)


def _int_or_none(value: str | None) -> int | None:
    try:
        return int((value or "").strip())
    except ValueError:
        return None


def read_csv_rows(path: Path, required: Iterable[str], problems: Problems, notes: Counter[str]) -> list[tuple[int, dict[str, str]]]:
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
        raise DataError(f"{path}: missing column {', '.join(repr(c) for c in missing)} (has: {', '.join(header) or 'nothing'})")
    rows, start = [], reader.line_num + 1
    for fields in reader:
        if any(f.strip() for f in fields):
            if len(fields) != len(header):
                problems.add("malformed_line", f"{path}:{start}", None, f"{len(fields)} fields, the header has {len(header)}")
            else:
                rows.append((start, dict(zip(header, fields))))
        start = reader.line_num + 1
    return rows


def prepare_meld(root: str | Path, out: str | Path, strict: bool = False, overwrite: bool = False,
                 text_only: bool = False) -> Prepared:
    """MELD.Raw -> utterances.jsonl + splits.json (protocol ``meld``: train / valid (= dev) / test).

    Reads ``{train,dev,test}_sent_emo.csv`` (UTF-8 with stray Windows-1252 bytes, see
    ``decode_text``). Dialogue ids restart in every split, so ``dialog_id`` is
    ``{split}_dia{D}``; ``turn`` follows Utterance_ID. Clips ``dia{D}_utt{U}.mp4`` are
    looked up in ``MELD_CLIP_FOLDERS`` (existence only). Without ffmpeg on PATH, or with
    ``text_only``, no clip is looked up and no ``audio_path`` is written.
    """
    problems, notes = Problems(strict), Counter[str]()
    root = check_root(root, "MELD.Raw")
    out = check_out(out, overwrite, root)
    ffmpeg = find_ffmpeg()
    with_audio = not text_only and ffmpeg is not None
    extra = [] if with_audio else [
        "text-only: no audio_path written (" + ("--text-only given" if text_only else "ffmpeg not found on PATH; it decodes the mp4 clips") + ")"
    ]
    rows, protocols = [], {"meld": {}}
    for split, key in MELD_SPLITS.items():
        path = root / f"{split}_sent_emo.csv"
        folders = meld_clip_folders(root, split) if with_audio else []
        if with_audio and not folders:
            extra.append(f"{split}: no clip folder found (looked for {', '.join(MELD_CLIP_FOLDERS[split])} under {root} and {root / split})")
        seen: dict[tuple[int, int], int] = {}
        split_rows = []
        for lineno, row in read_csv_rows(path, MELD_COLUMNS, problems, notes):
            where = f"{path}:{lineno}"
            dia, utt = _int_or_none(row["Dialogue_ID"]), _int_or_none(row["Utterance_ID"])
            if dia is None or utt is None or dia < 0 or utt < 0:
                problems.add("malformed_line", where, None,
                             f"Dialogue_ID {row['Dialogue_ID']!r} / Utterance_ID {row['Utterance_ID']!r}: expected whole numbers")
                continue
            utt_id = f"{split}_dia{dia}_utt{utt}"
            emotion, sentiment = row["Emotion"].strip().lower(), row["Sentiment"].strip().lower()
            if emotion not in MELD_EMOTIONS or sentiment not in MELD_SENTIMENTS:
                problems.add("malformed_line", where, utt_id, f"Emotion {row['Emotion']!r} / Sentiment {row['Sentiment']!r}: "
                             f"expected one of {' '.join(sorted(MELD_EMOTIONS))} / {' '.join(sorted(MELD_SENTIMENTS))}")
                continue
            if (dia, utt) in seen:
                problems.add("duplicate", where, utt_id, f"same Dialogue_ID and Utterance_ID as line {seen[dia, utt]}")
                continue
            seen[dia, utt] = lineno
            r: dict[str, Any] = {
                "utt_id": utt_id, "dialog_id": f"{split}_dia{dia}", "turn": utt, "split": split,
                "speaker": row["Speaker"].strip(), "text": row["Utterance"].strip(), "label": emotion, "sentiment": sentiment,
                "season": _int_or_none(row.get("Season")), "episode": _int_or_none(row.get("Episode")),
                "start": _meld_time(row.get("StartTime")), "end": _meld_time(row.get("EndTime")),
            }
            if with_audio:
                clip = next((f / f"dia{dia}_utt{utt}.mp4" for f in folders if (f / f"dia{dia}_utt{utt}.mp4").is_file()), None)
                if clip is None:
                    looked = ", ".join(str(f) for f in folders) or f"no clip folder exists for {split}"
                    problems.add("missing_audio", where, utt_id, f"no clip dia{dia}_utt{utt}.mp4 (looked in: {looked})")
                    continue
                r["audio_path"] = str(clip)
            split_rows.append(r)
        split_rows = renumber(split_rows, key=lambda r: r["turn"], dialog_key=lambda d: int(d.rsplit("dia", 1)[1]))
        protocols["meld"][key] = sorted({r["dialog_id"] for r in split_rows}, key=lambda d: int(d.rsplit("dia", 1)[1]))
        rows += split_rows
    return finish("meld", root, out, rows, protocols, problems, notes, overwrite, extra)


# ----------------------------------------------------------------------------- any table

TABLE_COLUMNS = ("dialog_id", "turn", "text", "audio_path")
TABLE_SPLITS = ("train", "valid", "test")


def prepare_table(csv_path: str | Path, out: str | Path, strict: bool = False, overwrite: bool = False) -> Prepared:
    """A CSV with ``dialog_id, turn, text, audio_path`` (+ optional ``label``, ``speaker``,
    ``split``) -> utterances.jsonl (+ splits.json, protocol ``given``, when ``split`` exists).

    A relative ``audio_path`` is relative to the CSV's folder (written absolute), so a table
    can travel with its recordings. Turns are kept as given (the reader orders by them);
    an empty ``label`` is an unlabelled context utterance. A ``split`` value other than
    train / valid / test, or a dialogue split across two values, is always fatal: it is a
    mistake in the protocol, not in one utterance.
    """
    problems, notes = Problems(strict), Counter[str]()
    path = Path(os.path.abspath(csv_path))
    out = check_out(out, overwrite, path)
    table = read_csv_rows(path, TABLE_COLUMNS, problems, notes)
    has = set(table[0][1]) if table else set()
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, int], int] = {}
    split_of: dict[str, tuple[str, int]] = {}
    for lineno, row in table:
        where = f"{path}:{lineno}"
        dialog_id, turn_text = row["dialog_id"].strip(), row["turn"].strip()
        turn = _int_or_none(turn_text)
        utt_id = f"{dialog_id}_{turn_text}" if dialog_id else None
        if not dialog_id or turn is None or turn < 0:
            problems.add("malformed_line", where, utt_id,
                         f"dialog_id {dialog_id!r} / turn {turn_text!r}: expected a name and a whole number >= 0")
            continue
        if "split" in has:
            split = row["split"].strip()
            if split not in TABLE_SPLITS:
                raise DataError(f"{where}: {utt_id}: split {split!r}: expected one of {', '.join(TABLE_SPLITS)}")
            first = split_of.setdefault(dialog_id, (split, lineno))
            if first[0] != split:
                raise DataError(f"{where}: {utt_id}: split {split!r}, but line {first[1]} puts dialogue {dialog_id!r} in {first[0]!r}")
        if (dialog_id, turn) in seen:
            problems.add("duplicate", where, utt_id, f"turn {turn} of dialogue {dialog_id!r} already on line {seen[dialog_id, turn]}")
            continue
        audio = row["audio_path"].strip()
        if not audio:
            problems.add("malformed_line", where, utt_id, "empty audio_path")
            continue
        audio_path = Path(os.path.abspath(path.parent / Path(audio).expanduser()))
        if not audio_path.is_file():
            problems.add("missing_audio", where, utt_id, f"audio_path {audio!r}: no file at {audio_path}")
            continue
        seen[dialog_id, turn] = lineno
        r: dict[str, Any] = {"utt_id": utt_id, "dialog_id": dialog_id, "turn": turn, "text": row["text"].strip()}
        if "label" in has:
            r["label"] = row["label"].strip() or None
        if "speaker" in has and row["speaker"].strip():
            r["speaker"] = row["speaker"].strip()
        if "split" in has:
            r["split"] = row["split"].strip()
        r["audio_path"] = str(audio_path)
        rows.append(r)
    order = {d: i for i, d in enumerate(dict.fromkeys(r["dialog_id"] for r in rows))}  # dialogues in order of appearance
    rows.sort(key=lambda r: (order[r["dialog_id"]], r["turn"]))
    protocols = None
    if "split" in has:
        given = {s: [d for d in order if split_of[d][0] == s] for s in TABLE_SPLITS}
        protocols = {"given": {s: ids for s, ids in given.items() if ids or s != "valid"}}
    return finish("table", path, out, rows, protocols, problems, notes, overwrite)


# ----------------------------------------------------------------------------- command line


def _run(args: argparse.Namespace) -> int:
    common = dict(out=args.out, strict=args.strict, overwrite=args.overwrite)
    if args.corpus == "iemocap":
        result = prepare_iemocap(args.root, **common)
    elif args.corpus == "meld":
        result = prepare_meld(args.root, text_only=args.text_only, **common)
    else:
        result = prepare_table(args.csv, **common)
    print("\n".join(result.summary()))
    return 0


def add_prepare_parser(subparsers: Any) -> None:
    """Register ``lpgnet prepare {iemocap,meld,table}`` on the main parser's subcommands."""
    p = subparsers.add_parser("prepare", help="convert IEMOCAP, MELD or a CSV table into the JSONL conversation format")
    sub = p.add_subparsers(dest="corpus", required=True)
    specs = [
        ("iemocap", "IEMOCAP_full_release folder -> utterances.jsonl, splits.json (session5)", "--root", "the IEMOCAP_full_release folder"),
        ("meld", "MELD.Raw folder -> utterances.jsonl, splits.json (meld: train/valid/test)", "--root", "the MELD.Raw folder (CSVs and clip folders)"),
        ("table", "CSV (dialog_id, turn, text, audio_path [, label, speaker, split]) -> utterances.jsonl", "--csv", "the CSV file"),
    ]
    for name, help_text, source, source_help in specs:
        q = sub.add_parser(name, help=help_text)
        q.add_argument(source, required=True, help=source_help)
        q.add_argument("--out", required=True, help="output folder (utterances.jsonl, splits.json, prepare-report.json)")
        q.add_argument("--strict", action="store_true", help="stop at the first problem instead of skipping and counting it")
        q.add_argument("--overwrite", action="store_true", help="replace a non-empty --out once the new output is complete")
        if name == "meld":
            q.add_argument("--text-only", action="store_true", help="write no audio paths (also automatic when ffmpeg is not on PATH)")
        q.set_defaults(func=_run)
