"""Dialogues and bundles: validation errors and the validation carve."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import dialogue
from lpgnet import DataError
from lpgnet.data import DataBundle, Dialogue
from lpgnet.data.conversation import IGNORE, carve_validation


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: dialogue(n=0, labels=[]), "empty dialogue"),
        (
            lambda: Dialogue("d1", np.zeros((3, 5), np.float32), np.zeros((3, 2), np.float32), np.zeros(3, int)),
            "field 'text': expected dimension 4, got 5",
        ),
        (lambda: dialogue(labels=[0, 7, 1]), "label 7 at utterance 1 is outside the label set"),
        (
            lambda: Dialogue("d1", np.full((3, 4), np.inf, np.float32), np.zeros((3, 2), np.float32), np.zeros(3, int)),
            "field 'text': infinite or huge value .* in utterance 0",
        ),
        (
            lambda: Dialogue("d1", np.full((3, 4), 1e7, np.float32), np.zeros((3, 2), np.float32), np.zeros(3, int)),
            "field 'text': infinite or huge value",
        ),
        (
            lambda: Dialogue(
                "d1", np.full((3, 4), np.nan, np.float32), np.full((3, 2), np.nan, np.float32), np.zeros(3, int)
            ),
            "utterance 0 has neither text nor audio features",
        ),
        (
            lambda: Dialogue("d1", np.zeros((2, 4), np.float32), np.zeros((3, 2), np.float32), np.zeros(3, int)),
            "field 'text': expected 3 rows",
        ),
    ],
)
def test_bad_dialogues_are_refused_with_a_clear_message(make, message):
    good = dialogue()
    with pytest.raises(DataError, match=message) as info:
        DataBundle({"train": [good, make()]}, ["a", "b"], "my.jsonl", dims={"text": 4, "audio": 2})
    assert "my.jsonl" in str(info.value) and "d1" in str(info.value)


def test_train_split_needs_labels():
    with pytest.raises(DataError, match="no labelled utterance"):
        DataBundle({"train": [dialogue(labels=[IGNORE] * 3)]}, ["a"], "x", dims={"text": 4, "audio": 2})


def test_carve_validation_is_by_dialogue_and_seeded(tiny_synthetic):
    train = tiny_synthetic.splits["train"]
    a, va = carve_validation(train, 0.25, seed=3)
    b, vb = carve_validation(train, 0.25, seed=3)
    assert [d.dialog_id for d in va] == [d.dialog_id for d in vb] and len(va) == 6
    assert not {d.dialog_id for d in a} & {d.dialog_id for d in va}
    assert [d.dialog_id for d in carve_validation(train, 0.25, seed=4)[1]] != [d.dialog_id for d in va]
