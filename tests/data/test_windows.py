"""Context windows (bounded memory for long dialogues): every utterance answered from
exactly one window, no window longer than the bound, short dialogues untouched."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from conftest import dialogue
from lpgnet.data.conversation import IGNORE
from lpgnet.data.windows import context_windows, windowed


@given(st.integers(1, 400), st.one_of(st.none(), st.integers(2, 64)), st.booleans())
def test_keep_ranges_partition_the_dialogue_inside_bounded_windows(n, size, causal):
    windows = context_windows(n, size, causal)
    assert windows[0].keep_start == 0 and windows[-1].keep_stop == n
    for a, b in zip(windows, windows[1:]):
        assert a.keep_stop == b.keep_start and a.start < b.start
    for w in windows:
        assert 0 <= w.start <= w.keep_start < w.keep_stop <= w.stop <= n
        assert size is None or w.stop - w.start <= size


@given(st.integers(65, 400), st.integers(8, 64))
def test_a_kept_utterance_has_context_on_both_sides_or_all_its_past(n, size):
    for w in context_windows(n, size):  # centred: a quarter window each side, edges aside
        assert w.keep_start == 0 or w.keep_start - w.start >= size // 4 - 1
        assert w.keep_stop == n or w.stop - w.keep_stop >= size // 4 - 1
    for w in context_windows(n, size, causal=True):  # causal: at least half a window of past
        assert w.keep_start == 0 or w.keep_start - w.start >= size // 2 - 1


def test_windowed_dialogues_count_each_label_once_and_keep_short_ones_as_they_are():
    labels = np.arange(50) % 3
    long = dialogue(n=50, labels=labels, speakers=[str(i) for i in range(50)])
    short = dialogue(n=5)
    parts = windowed([long, short], 16)
    assert parts[-1] is short and all(len(p) <= 16 for p in parts)
    kept = np.concatenate([p.labels for p in parts[:-1]])
    assert sorted(kept[kept != IGNORE].tolist()) == sorted(labels.tolist())
    for p in parts[:-1]:  # the speakers travel with their utterances
        first = int(p.dialog_id.split("[")[1].split(":")[0])
        assert p.speakers == [str(i) for i in range(first, first + len(p))]
    assert windowed([long], None) == [long]
