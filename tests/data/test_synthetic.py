"""The synthetic corpus's designed properties."""

from __future__ import annotations

import numpy as np

from lpgnet.config import SyntheticConfig
from lpgnet.data import make_synthetic
from lpgnet.data.conversation import IGNORE
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
    data = make_synthetic(
        SyntheticConfig(unlabelled_fraction=0.0, weak_fraction=0.0, speaker_offset=0.0, mood_strength=0.0)
    )
    x = {m: np.concatenate([getattr(d, m) for d in data.splits["train"]]) for m in ("text", "audio")}
    y = data.labels("train")
    mean = {m: {c: x[m][y == LABELS.index(c)].mean(0) for c in LABELS} for m in x}

    def dist(m, a, b):
        return np.linalg.norm(mean[m][a] - mean[m][b])

    assert dist("text", "hap", "exc") < 0.5 < 2.0 < dist("audio", "hap", "exc")  # audio-only pair
    assert dist("audio", "ang", "fru") < 0.5 < 2.0 < dist("text", "ang", "fru")  # text-only pair
    assert dist("text", "neu", "sad") < 0.5 and dist("audio", "neu", "sad") < 0.5  # context-only pair
