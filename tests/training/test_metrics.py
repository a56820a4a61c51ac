"""Metrics: scikit-learn figures, and the paper's one-vs-all family (SPEC "Metrics")."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from lpgnet.training.metrics import compute_metrics


def test_one_vs_all_accuracy_identity():
    rng = np.random.default_rng(0)
    for k in (4, 6):
        y = rng.integers(0, k, 500)
        p = np.where(rng.random(500) < 0.7, y, rng.integers(0, k, 500))
        m = compute_metrics(y, p, [f"c{i}" for i in range(k)])
        assert m["ova_accuracy"] == pytest.approx(1 - 2 * (1 - m["accuracy"]) / k)
        assert m["ova_accuracy"] > m["accuracy"]


def test_hand_example():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0])
    m = compute_metrics(y, p, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["b"]["recall"] == pytest.approx(1.0)
    assert m["uar"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    f1 = {"a": 0.5, "b": 0.8, "c": 2 / 3}
    assert m["macro_f1"] == pytest.approx(np.mean(list(f1.values())))
    assert m["weighted_f1"] == pytest.approx(np.mean(list(f1.values())))  # equal supports
    # class "a" vs rest: truth [1,1,0,0,0,0], prediction [1,0,0,0,0,1] -> 4/6 right
    assert m["per_class"]["a"]["ova_accuracy"] == pytest.approx(4 / 6)
    assert set(m) >= {
        "accuracy",
        "weighted_f1",
        "macro_f1",
        "uar",
        "ova_accuracy",
        "ova_f1",
        "per_class",
        "confusion_matrix",
        "labels",
    }


def test_macro_scores_average_over_classes_present_in_truth():
    m = compute_metrics(np.array([0, 0, 1]), np.array([0, 2, 1]), ["a", "b", "c"])
    assert m["uar"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1.0) / 2)  # class c absent from truth: not averaged


def test_paired_difference_is_a_t_interval_over_pairs():
    from lpgnet.training.metrics import paired_difference, pearson

    d = paired_difference([0.80, 0.82, 0.81], [0.70, 0.70, 0.71])
    diffs = [0.10, 0.12, 0.10]
    half = 4.302652729911275 * statistics.stdev(diffs) / 3**0.5  # t(0.975, 2)
    assert d["mean"] == pytest.approx(np.mean(diffs)) and d["n"] == 3 and d["resolved"]
    assert (d["low"], d["high"]) == pytest.approx((np.mean(diffs) - half, np.mean(diffs) + half))
    assert not paired_difference([0.8, 0.7], [0.75, 0.76])["resolved"]  # the interval crosses zero
    assert not paired_difference([0.8], [0.7])["resolved"]  # one pair: no spread, nothing resolved
    assert pearson([1, 2, 3], [2, 4, 7]) == pytest.approx(0.9933992677987828)
    assert pearson([1, 1, 1], [1, 2, 3]) is None
