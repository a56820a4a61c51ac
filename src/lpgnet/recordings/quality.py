"""How good a segmentation is, against a generated conversation's truth.

* boundary error: for each true utterance matched to a found segment (one-to-one, by
  largest overlap), the mean of |start difference| and |end difference|, in seconds;
* missed / extra: true utterances no found segment overlaps, found segments no true one does;
* speaker accuracy: the share of true utterances whose matched segment carries the
  right speaker, found names mapped one-to-one onto true ones (the mapping that gets
  the most right: speaker names from clustering are arbitrary); missed ones count wrong;
* word error rate (jiwer): all true words against all found words in time order,
  lower-cased, punctuation removed.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from .segments import Segment


def _overlap(a: Segment, b: Segment) -> float:
    return max(0.0, min(a.end, b.end) - max(a.start, b.start))


def match(truth: list[Segment], found: list[Segment]) -> list[int | None]:
    """For each true utterance, the index of its found segment (None: missed)."""
    if not truth or not found:
        return [None] * len(truth)
    gain = np.array([[_overlap(t, f) for f in found] for t in truth])
    rows, cols = linear_sum_assignment(-gain)
    out: list[int | None] = [None] * len(truth)
    for r, c in zip(rows, cols):
        if gain[r, c] > 0:
            out[r] = int(c)
    return out


def _words(texts: list[str | None]) -> str:
    return " ".join(w for t in texts for w in re.sub(r"[^a-z0-9' ]+", " ", (t or "").lower()).split())


def score(truth: list[Segment], found: list[Segment]) -> dict[str, Any]:
    pairs = match(truth, found)
    matched = [(t, found[j]) for t, j in zip(truth, pairs) if j is not None]
    errors = [(abs(t.start - f.start) + abs(t.end - f.end)) / 2 for t, f in matched]
    true_names = sorted({t.speaker for t in truth})
    found_names = sorted({f.speaker for f in found})
    counts = np.zeros((len(true_names), max(1, len(found_names))))
    for t, f in matched:
        counts[true_names.index(t.speaker), found_names.index(f.speaker)] += 1
    rows, cols = linear_sum_assignment(-counts)
    right = float(counts[rows, cols].sum())
    extra = sum(1 for f in found if not any(_overlap(t, f) > 0 for t in truth))
    out: dict[str, Any] = {
        "utterances": len(truth),
        "segments": len(found),
        "missed": len(truth) - len(matched),
        "extra": extra,
        "boundary_error_s": float(np.mean(errors)) if errors else None,
        "speaker_accuracy": right / len(truth) if truth else None,
    }
    reference = _words([t.text for t in sorted(truth, key=lambda s: s.start)])
    if reference and all(f.text is not None for f in found):
        import jiwer

        hypothesis = _words([f.text for f in sorted(found, key=lambda s: s.start)])
        out["wer"] = float(jiwer.wer(reference, hypothesis)) if hypothesis else 1.0
    return out
