"""Batching: padding with masks and IGNORE, length buckets."""

from __future__ import annotations

import numpy as np

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
