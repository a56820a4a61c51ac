"""Data: the synthetic corpus's designed properties, validation errors, batching."""

from __future__ import annotations

import numpy as np
import pytest

from lpgnet import DataError
from lpgnet.config import SyntheticConfig
from lpgnet.data import DataBundle, Dialogue, make_synthetic
from lpgnet.data.batching import batch_indices, collate, tensorize
from lpgnet.data.conversation import IGNORE, carve_validation
from lpgnet.data.synthetic import LABELS


def test_synthetic_is_deterministic_and_speaker_disjoint():
    a, b = make_synthetic(), make_synthetic()
    assert all(np.array_equal(x.text, y.text) for x, y in zip(a.splits["train"], b.splits["train"]))
    train_spk = {s for d in a.splits["train"] for s in d.speakers}
    test_spk = {s for d in a.splits["test"] for s in d.speakers}
    assert train_spk and test_spk and not train_spk & test_spk
    assert a.label_names == LABELS and a.dims == {"text": 64, "audio": 32}
    lengths = [len(d) for d in a.splits["train"]]
    assert min(lengths) >= 8 and max(lengths) <= 36 and len(set(lengths)) > 10
    labels = a.labels("train")
    assert 0.05 < (labels == IGNORE).mean() < 0.15  # unlabelled context utterances
    assert set(labels[labels != IGNORE]) == set(range(6))


def test_synthetic_inertia_and_mood():
    data = make_synthetic(SyntheticConfig(unlabelled_fraction=0.0))
    same = total = 0
    for d in data.splits["train"]:
        labels = d.labels
        assert not ({0, 1} <= set(labels.tolist())), "neu and sad never share a dialogue (mood)"
        last: dict[str, int] = {}
        for spk, y in zip(d.speakers, labels):
            if spk in last:
                same += last[spk] == y
                total += 1
            last[spk] = y
    assert same / total > 0.7  # a speaker mostly keeps their emotion (inertia 0.75)


def test_synthetic_pairs_share_prototypes():
    data = make_synthetic(SyntheticConfig(unlabelled_fraction=0.0, weak_fraction=0.0, speaker_offset=0.0, mood_strength=0.0))
    x = {m: np.concatenate([getattr(d, m) for d in data.splits["train"]]) for m in ("text", "audio")}
    y = data.labels("train")
    mean = {m: {c: x[m][y == LABELS.index(c)].mean(0) for c in LABELS} for m in x}

    def dist(m, a, b):
        return np.linalg.norm(mean[m][a] - mean[m][b])

    assert dist("text", "hap", "exc") < 0.5 < 2.0 < dist("audio", "hap", "exc")  # audio-only pair
    assert dist("audio", "ang", "fru") < 0.5 < 2.0 < dist("text", "ang", "fru")  # text-only pair
    assert dist("text", "neu", "sad") < 0.5 and dist("audio", "neu", "sad") < 0.5  # context-only pair


def dialogue(n=3, d_t=4, d_a=2, labels=None, **kw):
    return Dialogue("d1", np.zeros((n, d_t), np.float32), np.zeros((n, d_a), np.float32),
                    np.asarray(labels if labels is not None else [0] * n), **kw)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: dialogue(n=0, labels=[]), "empty dialogue"),
        (lambda: Dialogue("d1", np.zeros((3, 5), np.float32), np.zeros((3, 2), np.float32), np.zeros(3, int)),
         "field 'text': expected dimension 4, got 5"),
        (lambda: dialogue(labels=[0, 7, 1]), "label 7 at utterance 1 is outside the label set"),
        (lambda: Dialogue("d1", np.full((3, 4), np.nan, np.float32), np.zeros((3, 2), np.float32), np.zeros(3, int)),
         "field 'text': NaN or inf in utterance 0"),
        (lambda: Dialogue("d1", np.zeros((2, 4), np.float32), np.zeros((3, 2), np.float32), np.zeros(3, int)),
         "field 'text': expected 3 rows"),
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
