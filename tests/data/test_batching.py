"""Batching: padding with masks and IGNORE, length buckets."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from conftest import dialogue
from lpgnet.data.batching import batch_indices, collate, tensorize
from lpgnet.data.conversation import IGNORE


def test_collate_pads_with_mask_and_ignore():
    items = tensorize([dialogue(n=2, labels=[0, 1]), dialogue(n=4, labels=[1, IGNORE, 0, 0])])
    batch = collate(items)
    assert batch.text.shape == (2, 4, 4) and batch.mask.tolist() == [[True, True, False, False], [True] * 4]
    assert batch.labels.tolist() == [[0, 1, IGNORE, IGNORE], [1, IGNORE, 0, 0]]


def test_length_buckets_cover_everything_once_and_reduce_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 100, 200).tolist()
    batches = batch_indices(lengths, 16, np.random.default_rng(1))
    assert sorted(i for b in batches for i in b) == list(range(200))

    def padding(bs):
        return sum(max(lengths[i] for i in b) * len(b) for b in bs) - sum(lengths)

    shuffled = batch_indices(lengths, 16, np.random.default_rng(1), bucket=False)
    assert padding(batches) < 0.3 * padding(shuffled)
    assert batches != batch_indices(lengths, 16, np.random.default_rng(2))  # membership varies by epoch


def test_no_one_dialogue_training_batch():
    for n in (17, 33, 1 + 8 * 5):
        batches = batch_indices(list(range(5, 5 + n)), 8, np.random.default_rng(0))
        assert min(len(b) for b in batches) >= 2 and sum(len(b) for b in batches) == n


@given(
    st.lists(st.integers(1, 600), min_size=1, max_size=80),
    st.integers(1, 40),
    st.integers(2, 3000),
    st.booleans(),
)
def test_a_slot_bound_cuts_big_batches_and_leaves_the_rest_as_they_were(lengths, batch_size, max_slots, train):
    rng = (lambda: np.random.default_rng(0)) if train else (lambda: None)
    bounded = batch_indices(lengths, batch_size, rng(), max_slots=max_slots)
    assert sorted(i for b in bounded for i in b) == list(range(len(lengths)))  # each item once
    for b in bounded:  # within the bound, or of the fewest items allowed: two (three)
        assert len(b) <= 3 or len(b) * max(lengths[i] for i in b) <= max_slots
        assert not train or len(b) >= min(2, batch_size, len(lengths))  # BatchNorm: no lone dialogue
    loose = max(lengths) * batch_size * 2
    assert batch_indices(lengths, batch_size, rng(), max_slots=loose) == batch_indices(lengths, batch_size, rng())
