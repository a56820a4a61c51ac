"""Training curves and confusion matrices as PNG (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..files import save_figure  # noqa: E402


def plot_curves(history: list[dict[str, float]], path: str | Path, best_epoch: int, select_metric: str) -> None:
    """Loss (train, valid) and validation metrics per epoch; the selected epoch marked."""
    epochs = [r["epoch"] for r in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(epochs, [r["train_total"] for r in history], label="train total loss (22)")
    ax1.plot(epochs, [r["train_task"] for r in history], label="train task CE (17)")
    ax1.plot(epochs, [r["valid_loss"] for r in history], label="valid task CE")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    for key in ("accuracy", "weighted_f1", "macro_f1", "uar"):
        ax2.plot(epochs, [r[f"valid_{key}"] for r in history], label=f"valid {key}")
    for ax in (ax1, ax2):
        ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("multiclass metric")
    ax2.set_title(f"selected epoch {best_epoch} (best valid {select_metric})", fontsize=10)
    ax2.legend()
    save_figure(fig, Path(path))


def plot_confusion(metrics: dict[str, Any], path: str | Path, title: str = "test") -> None:
    """Row-normalised confusion matrix with counts, labelled with accuracy and weighted F1."""
    cm = np.asarray(metrics["confusion_matrix"], dtype=float)
    labels = metrics["labels"]
    norm = cm / np.clip(cm.sum(1, keepdims=True), 1, None)
    fig, ax = plt.subplots(figsize=(1.1 * len(labels) + 2, 1.0 * len(labels) + 1.5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                f"{int(cm[i, j])}\n{norm[i, j]:.2f}",
                ha="center",
                va="center",
                color="white" if norm[i, j] > 0.5 else "black",
                fontsize=8,
            )
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}: accuracy {metrics['accuracy']:.3f}, weighted F1 {metrics['weighted_f1']:.3f}", fontsize=10)
    save_figure(fig, Path(path))
