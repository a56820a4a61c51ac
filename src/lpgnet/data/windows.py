"""Bounded memory for long conversations: a dialogue longer than ``data.context_window``
utterances is processed as overlapping windows of that many utterances.

Memory grows with a dialogue's length (attention, and every dialogue of its batch padded
to it: one 2,000-utterance dialogue among short ones at d = 768 needed 12.7 GB for a
training epoch; ``train.max_batch_utterances`` bounds the padding), and the global
compression (6) summarises whatever the model is given. So training, scoring and prediction all see a
long dialogue as windows of at most ``size`` utterances, the next starting half a window
later (the last one ends at the dialogue's end). Each utterance is *kept* -- its label
counted, its prediction returned -- from exactly one window: the one in which it sits
furthest from the window's edges (a causal model: the one giving it the most past);
in the other windows it is unlabelled context. Dialogues no longer than the window (all
of IEMOCAP's and MELD's under the default 512) are untouched. A window is a dialogue of
its own: per-dialogue speaker indices (``party``) count from its first utterance.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .conversation import IGNORE, Dialogue


@dataclass(frozen=True)
class Window:
    """Utterances ``start:stop`` of a dialogue, of which ``keep_start:keep_stop`` (absolute
    indices, inside it) are answered from this window."""

    start: int
    stop: int
    keep_start: int
    keep_stop: int


def context_windows(n: int, size: int | None, causal: bool = False) -> list[Window]:
    """The windows covering ``n`` utterances (one when ``size`` is None or n <= size);
    their keep ranges partition 0..n."""
    if size is None or n <= size:
        return [Window(0, n, 0, n)]
    stride = max(1, size // 2)
    starts = list(range(0, n - size, stride)) + [n - size]
    if causal:  # keep where the utterance has the most past: a window's tail
        bounds = [0] + [s + size for s in starts[:-1]] + [n]
    else:  # keep where the utterance is nearest the centre: cut halfway between centres
        bounds = [0] + [(a + b + size) // 2 for a, b in zip(starts, starts[1:])] + [n]
    return [Window(s, s + size, bounds[k], bounds[k + 1]) for k, s in enumerate(starts)]


def window_dialogue(d: Dialogue, w: Window) -> Dialogue:
    """Utterances ``w.start:w.stop`` of ``d``, labelled only inside the keep range."""
    cut = slice(w.start, w.stop)
    labels = np.full(w.stop - w.start, IGNORE, dtype=d.labels.dtype)
    keep = slice(w.keep_start - w.start, w.keep_stop - w.start)
    labels[keep] = d.labels[w.keep_start : w.keep_stop]
    part = lambda xs: None if xs is None else xs[cut]  # noqa: E731
    return replace(
        d,
        dialog_id=f"{d.dialog_id}[{w.start}:{w.stop}]",
        text=d.text[cut],
        audio=d.audio[cut],
        labels=labels,
        speakers=part(d.speakers),
        utt_ids=part(d.utt_ids),
        texts=part(d.texts),
        text_frames=part(d.text_frames),
        audio_frames=part(d.audio_frames),
    )


def windowed(dialogues: list[Dialogue], size: int | None, causal: bool = False) -> list[Dialogue]:
    """Each dialogue as it is, or as its windows when it is longer than ``size``: every
    labelled utterance is counted exactly once (see the module doc)."""
    out: list[Dialogue] = []
    for d in dialogues:
        windows = context_windows(len(d), size, causal)
        out += [d] if len(windows) == 1 else [window_dialogue(d, w) for w in windows]
    return out
