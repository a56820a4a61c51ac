"""One figure per table of the results page, drawn from the same summaries as the table.

A table of means hides what a reader most needs to judge a gap: how far each run lands
from the mean. So every figure shows each run as a dot and the mean as a bar:

- ``main`` and ``study`` tables: test weighted F1 per run, one line per row; a study
  also shows the selection weighted F1 (the only figure a choice may use) beside it;
- ``selection`` tables: selection wF1 against test wF1, one point per run, one colour per
  row -- a rule that tracks held-out data makes each row's cloud rise to the right;
- ``per_class`` tables: per-class test F1 and recall, mean ± std over runs, one bar per row;
- ``retrain`` tables: test accuracy of each run's final retrain, of its fold models alone
  and of their average, one line per row.

Rows without a current summary are drawn as labels only, so the figure keeps the table's
order. Written atomically (``files.save_figure``) next to the page, in ``figures/``.
"""

from __future__ import annotations

import statistics
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..files import save_figure  # noqa: E402
from .manifest import Row, Table  # noqa: E402

Summaries = list[tuple[Row, dict[str, Any] | None]]


def draw_table_figure(table: Table, summaries: Summaries, path: Path) -> bool:
    """Draw ``table``'s figure to ``path``; False (nothing written) when no row has runs."""
    done = [(row, s) for row, s in summaries if s is not None and row.split in s]
    if not done:
        return False
    if table.kind == "selection":
        fig = _selection(done)
    elif table.kind == "per_class":
        fig = _per_class(done)
    elif table.kind == "retrain":
        fig = _retrain(summaries)
    else:
        fig = _runs(summaries, study=table.kind == "study")
    fig.suptitle(textwrap.fill(table.title, 90), fontsize=9)
    save_figure(fig, path)
    return True


def _per_run(summary: dict[str, Any], split: str) -> list[float]:
    return [100 * r[split]["weighted_f1"] for r in summary["runs"] if split in r]


def _dots(ax: Any, values: list[float], y: float, colour: str, label: str, labelled: set[str], half: float) -> None:
    """One series of one row: a dot per value at height ``y`` and its mean as a bar
    ``half`` high each side; the legend names each label once (``labelled``)."""
    if not values:
        return
    ax.scatter(values, [y] * len(values), s=12, color=colour, alpha=0.6, label=None if label in labelled else label)
    labelled.add(label)
    ax.plot([statistics.fmean(values)] * 2, [y - half, y + half], color=colour, linewidth=2)


def _runs(summaries: Summaries, study: bool) -> Any:
    """Per-run test wF1 (and, for a study, selection wF1) as dots, the mean as a bar."""
    n = len(summaries)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.32 * n), layout="constrained")
    splits = [("valid", "selection wF1 (chooses)", "tab:orange", -0.17)] if study else []
    splits.append(("test", "test wF1 (never chooses)" if study else "test wF1", "tab:blue", 0.17 if study else 0.0))
    labelled: set[str] = set()
    for i, (row, s) in enumerate(summaries):
        if s is None or row.split not in s:
            continue
        for split, label, colour, dy in splits:
            _dots(ax, _per_run(s, row.split if split == "test" else split), i + dy, colour, label, labelled, 0.14)
    ax.set_yticks(
        range(n), [textwrap.fill(row.name, 60) + ("" if s else " (not run yet)") for row, s in summaries], fontsize=7
    )
    ax.invert_yaxis()
    ax.set_xlabel("weighted F1 (%), one dot per run, bar = mean")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return fig


def _retrain(summaries: Summaries) -> Any:
    """Per row: each run's final retrain, each of its fold models alone and their average
    (test accuracy), as dots with the mean as a bar; runs without fold-model scores are left out."""
    n = len(summaries)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.45 * n), layout="constrained")
    series = [
        ("final retrain", "tab:blue", -0.22, lambda r, f: [r["test"]["accuracy"]]),
        ("fold models alone", "tab:gray", 0.0, lambda r, f: f["members"]["accuracy"]),
        ("fold models averaged", "tab:green", 0.22, lambda r, f: [f["ensemble"]["accuracy"]]),
    ]
    labelled: set[str] = set()
    names = []
    for i, (row, s) in enumerate(summaries):
        runs = [(r, r["fold_models_test"]) for r in (s or {}).get("runs", []) if r.get("fold_models_test")]
        names.append(textwrap.fill(row.name, 60) + ("" if runs else " (no fold-model scores yet)"))
        for label, colour, dy, values_of in series:
            _dots(ax, [100 * v for r, f in runs for v in values_of(r, f)], i + dy, colour, label, labelled, 0.1)
    ax.set_yticks(range(n), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("test accuracy (%), one dot per model, bar = mean")
    ax.grid(axis="x", alpha=0.3)
    if labelled:
        ax.legend(fontsize=7, loc="best")
    return fig


def _selection(done: Summaries) -> Any:
    """Selection wF1 against test wF1, one point per run, one colour per row."""
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    colours = plt.get_cmap("tab10" if len(done) <= 10 else "tab20")
    for i, (row, s) in enumerate(done):
        sel, test = _per_run(s, "valid"), _per_run(s, "test")
        ax.scatter(sel, test, s=16, color=colours(i), alpha=0.75, label=textwrap.fill(row.name, 45))
    ax.set_xlabel("selection wF1 (%): what the epoch was chosen on")
    ax.set_ylabel("test wF1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return fig


def _per_class(done: Summaries) -> Any:
    """Per-class test F1 and recall, mean ± std over the runs, one bar per row in each
    class group: a seed spread that F1 averages away (precision and recall moving in
    opposite directions) stays visible in recall."""
    # rows may differ in classes (a 4-class and a 6-class row): their union, in order
    classes = list(dict.fromkeys(c for _, s in done for c in s["test"]["per_class"]))  # type: ignore[index]
    fig, axes = plt.subplots(1, 2, figsize=(max(9.0, 1.7 * len(classes) + 2), 3.8), layout="constrained", sharey=True)
    width = 0.8 / len(done)
    for ax, metric in zip(axes, ("f1", "recall"), strict=True):
        for i, (row, s) in enumerate(done):
            pc = s["test"]["per_class"]  # type: ignore[index]
            x = np.arange(len(classes)) + (i - (len(done) - 1) / 2) * width
            means = [100 * pc[c][metric]["mean"] if c in pc else np.nan for c in classes]
            stds = [100 * pc[c][metric]["std"] if c in pc else 0.0 for c in classes]
            ax.bar(x, means, width, yerr=stds, capsize=2, label=textwrap.fill(row.name, 45))
        ax.set_xticks(range(len(classes)), classes)
        ax.set_title(f"test {'F1' if metric == 'f1' else 'recall'}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("%, mean ± std over runs")
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="outside lower center", ncols=min(len(done), 3))
    return fig
