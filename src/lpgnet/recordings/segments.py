"""The utterance of a recording (a ``Segment``) and the ``--segments`` CSV a user may
already have (from a diarisation tool, or a transcript with times)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError

CSV_FIELDS = ("start", "end", "speaker", "text")  # text is optional


@dataclass
class Segment:
    """One utterance: seconds from the start of the recording, who, and (once known) what.

    ``channel`` is the channel it was heard on (None: the channels mixed)."""

    start: float
    end: float
    speaker: str = ""
    text: str | None = None
    channel: int | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start


def read_segments(path: str | Path) -> dict[str, list[Segment]]:
    """Segments by recording from a CSV with columns start, end, speaker and optional text
    (and optional ``recording``: a file name, for a CSV that covers several recordings;
    without it the segments belong to every recording analysed). An empty text cell
    leaves that utterance to speech recognition; an empty speaker column, the speakers.

    Times are seconds. Every problem is a ``DataError`` naming the file, line and field.
    Returns ``{recording name or "": segments sorted by start}``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: segments file not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in reader.fieldnames or []]
            for need in ("start", "end"):
                if need not in columns:
                    raise DataError(
                        f"{path}: no column {need!r} (expected a header with start, end, speaker and optional text; "
                        f"got {', '.join(columns) or 'no header'})"
                    )
            out: dict[str, list[Segment]] = {}
            for lineno, raw in enumerate(reader, start=2):
                row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
                times = []
                for name in ("start", "end"):
                    try:
                        value = float(row.get(name, ""))
                    except ValueError:
                        raise DataError(
                            f"{path}: line {lineno}: field {name!r}: expected seconds (a number), got {row.get(name)!r}"
                        ) from None
                    if not math.isfinite(value) or value < 0:
                        raise DataError(
                            f"{path}: line {lineno}: field {name!r}: expected seconds >= 0, got {row.get(name)!r}"
                        )
                    times.append(value)
                if times[1] <= times[0]:
                    raise DataError(
                        f"{path}: line {lineno}: field 'end': expected a time after start ({times[0]:g} s), got {times[1]:g}"
                    )
                text = row.get("text") or None  # an empty cell: to be transcribed
                seg = Segment(times[0], times[1], speaker=row.get("speaker", ""), text=text)
                out.setdefault(row.get("recording", ""), []).append(seg)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file (expected a CSV)") from None
    if not out:
        raise DataError(f"{path}: no segments (expected one row per utterance after the header)")
    for segs in out.values():
        segs.sort(key=lambda s: (s.start, s.end))
    return out
