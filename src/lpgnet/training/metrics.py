"""Every figure labelled by its family -- read SPEC "Metrics" before comparing numbers.

Multiclass (what most ERC papers report): ``accuracy``, ``weighted_f1``, ``macro_f1``,
``uar`` (unweighted average recall = mean per-class recall), per-class precision /
recall / F1 and the confusion matrix, all from scikit-learn.

One-vs-all (the LPGNet paper's §4.1 protocol): each class c becomes a binary problem
"c vs rest"; ``ova_accuracy`` averages the K binary accuracies and ``ova_f1`` the K
binary F1 scores, each binary F1 support-weighted over its two outcomes. Every wrong
prediction is an error in exactly two of the K binary problems, so
``ova_accuracy = 1 - 2 (1 - accuracy) / K``: with K = 4, 0.88 one-vs-all is 0.76
multiclass. (Averaging only the positive-class F1 instead would give exactly
``macro_f1``; the weighted reading is the one under which the paper's F1 sits beside its
accuracy.)
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

HEADLINE = ("accuracy", "weighted_f1", "macro_f1", "uar", "ova_accuracy", "ova_f1")
SCALARS = (*HEADLINE, "loss")  # every scalar a scored split has (``loss``: mean task cross-entropy)


def compute_metrics(y_true: np.ndarray, y_pred: np.ndarray, label_names: list[str]) -> dict[str, Any]:
    """All metrics for integer labels ``y_true``/``y_pred`` over ``label_names``."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    labels = list(range(len(label_names)))
    if y_true.size == 0:
        raise ValueError("no labelled utterances to score")
    prec, rec, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = support > 0
    ova_acc, ova_f1 = [], []
    for c in labels:
        t, p = y_true == c, y_pred == c
        ova_acc.append(float((t == p).mean()))
        ova_f1.append(float(f1_score(t, p, average="weighted", zero_division=0)))
    per_class = {
        name: {
            "precision": float(prec[c]),
            "recall": float(rec[c]),
            "f1": float(f1[c]),
            "support": int(support[c]),
            "ova_accuracy": ova_acc[c],
            "ova_f1": ova_f1[c],
        }
        for c, name in enumerate(label_names)
    }
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        # Macro F1 and UAR average over the classes that occur in y_true: a class absent
        # from a split has no recall and no meaningful F1 (predicting it still costs
        # precision elsewhere). With every class present this is sklearn's macro average.
        "macro_f1": float(f1[present].mean()),
        "uar": float(rec[present].mean()),
        "ova_accuracy": float(np.mean(ova_acc)),
        "ova_f1": float(np.mean(ova_f1)),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "labels": list(label_names),
        "n": int(y_true.size),
    }


def format_metrics(m: dict[str, Any]) -> str:
    """One log line: multiclass figures first, the paper's one-vs-all family marked."""
    return (
        f"acc {m['accuracy']:.4f}  wF1 {m['weighted_f1']:.4f}  mF1 {m['macro_f1']:.4f}  UAR {m['uar']:.4f}"
        f"  | one-vs-all acc {m['ova_accuracy']:.4f} F1 {m['ova_f1']:.4f}"
    )


def mean_std(values: list[float]) -> dict[str, float]:
    """Mean, sample standard deviation (0 for one value) and count: how every summary row
    of several seeds or folds is reported."""
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "n": len(values),
    }


def paired_difference(a: list[float], b: list[float], level: float = 0.95) -> dict[str, float]:
    """Mean of the paired differences a_i - b_i (the same seed, fold, data for both) and
    its two-sided t interval: how sure a comparison of two configurations is, given the
    seed-to-seed spread. ``resolved`` is whether the interval excludes zero."""
    from scipy.stats import t as student_t

    if len(a) != len(b) or not a:
        raise ValueError(f"paired_difference: expected two equal, non-empty lists, got {len(a)} and {len(b)}")
    d = [x - y for x, y in zip(a, b)]
    mean = statistics.fmean(d)
    if len(d) == 1:
        return {"mean": mean, "low": float("-inf"), "high": float("inf"), "n": 1, "resolved": False}
    half = float(student_t.ppf(0.5 + level / 2, len(d) - 1)) * statistics.stdev(d) / len(d) ** 0.5
    return {
        "mean": mean,
        "low": mean - half,
        "high": mean + half,
        "n": len(d),
        "resolved": not mean - half <= 0 <= mean + half,
    }


def pearson(x: list[float], y: list[float]) -> float | None:
    """Pearson correlation of two equally long lists; None when either has no spread."""
    if len(x) != len(y) or len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(np.corrcoef(x, y)[0, 1])
