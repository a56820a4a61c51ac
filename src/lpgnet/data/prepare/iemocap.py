"""IEMOCAP_full_release -> the conversation format (``lpgnet prepare iemocap``)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ...errors import DataError
from .common import (
    CorpusProblems,
    Prepared,
    check_out,
    check_root,
    finish,
    read_metadata,
    renumber,
)

IEMOCAP_CODES = {"neu", "fru", "sad", "sur", "ang", "hap", "exc", "fea", "dis", "oth", "xxx"}
LABEL4 = {
    "ang": "ang",
    "hap": "hap",
    "exc": "hap",
    "neu": "neu",
    "sad": "sad",
}  # the standard 4 classes, excited merged
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


def _iemocap_labels(
    session_dir: Path, problems: CorpusProblems, notes: Counter[str], seen: dict[str, str], bad_ids: set[str]
) -> list[_Label]:
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
                problems.add_at(
                    "malformed_line",
                    where,
                    utt_id,
                    "expected '[start - end] <tab> utterance id <tab> code <tab> [V, A, D]'",
                )
                continue
            u = IEMOCAP_UTT.fullmatch(utt_id)
            code = m.group(4)
            try:
                start, end = float(m.group(1)), float(m.group(2))
            except ValueError:
                start = end = -1.0
            if not u:
                problems.add_at("malformed_line", where, utt_id, "not an utterance id like Ses01F_impro90_F000")
            elif u.group(1) != path.stem:
                problems.add_at(
                    "malformed_line",
                    where,
                    utt_id,
                    f"utterance of dialogue {u.group(1)!r} in the file of {path.stem!r}",
                )
            elif code not in IEMOCAP_CODES:
                problems.add_at(
                    "malformed_line",
                    where,
                    utt_id,
                    f"unknown emotion code {code!r} (expected one of {' '.join(sorted(IEMOCAP_CODES))})",
                )
            elif not 0 <= start <= end:
                problems.add_at("malformed_line", where, utt_id, f"bad time span [{m.group(1)} - {m.group(2)}]")
            elif utt_id in seen:
                problems.add_at("duplicate", where, utt_id, f"labelled twice (first at {seen[utt_id]})")
            else:
                seen[utt_id] = where
                bad_ids.discard(utt_id)
                session = int(u.group(2))
                labels.append(
                    _Label(
                        utt_id,
                        u.group(1),
                        session,
                        f"Ses{u.group(2)}_{u.group(3)}",
                        code,
                        start,
                        end,
                        path,
                        lineno,
                        session_dir,
                    )
                )
    return labels


def _iemocap_transcripts(
    path: Path, problems: CorpusProblems, notes: Counter[str]
) -> dict[str, tuple[str, int]] | None:
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
            problems.add_at(
                "malformed_line", f"{path}:{lineno}", first.split("[")[0], "expected 'utterance id [start-end]: text'"
            )
            continue
        utt_id = m.group(1)
        if utt_id in found:
            problems.add_at(
                "duplicate", f"{path}:{lineno}", utt_id, f"transcribed twice (first on line {found[utt_id][1]})"
            )
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
    problems, notes = CorpusProblems(strict), Counter[str]()
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
            problems.add_at("missing_transcription", where, lab.utt_id, f"{why} {t_path}")
            continue
        wav = lab.session_dir / "sentences" / "wav" / lab.dialog_id / f"{lab.utt_id}.wav"
        if not wav.is_file():
            problems.add_at("missing_audio", where, lab.utt_id, f"no recording at {wav}")
            continue
        rows.append(
            {
                "utt_id": lab.utt_id,
                "dialog_id": lab.dialog_id,
                "turn": 0,
                "session": lab.session,
                "speaker": lab.speaker,
                "text": found[lab.utt_id][0],
                "label": lab.code,
                "label4": LABEL4.get(lab.code),
                "label6": lab.code if lab.code in LABEL6 else None,
                "start": lab.start,
                "end": lab.end,
                "audio_path": str(wav),
            }
        )
    labelled = {lab.utt_id for lab in labels}
    for t_path, found in transcripts.items():
        for utt_id, (_, lineno) in (found or {}).items():
            if utt_id not in labelled and utt_id not in bad_ids:
                problems.add_at(
                    "missing_label",
                    f"{t_path}:{lineno}",
                    utt_id,
                    "transcribed but has no label line in dialog/EmoEvaluation",
                )

    rows = renumber(rows, key=lambda r: (r["start"], r["utt_id"]))
    dialog_session = {r["dialog_id"]: r["session"] for r in rows}
    protocols = {
        "session5": {
            "train": [d for d, s in dialog_session.items() if s != 5],
            "test": [d for d, s in dialog_session.items() if s == 5],
        }
    }
    return finish(
        "iemocap",
        root,
        out,
        rows,
        protocols,
        problems,
        notes,
        overwrite,
        [
            "protocol session5: sessions 1-4 train (carve validation from it), session 5 test; "
            "leave-one-session-out: data.protocol loso-<session>"
        ],
    )
