"""Re-score a saved run: rebuild its data from ``config.yaml``, load its weights, and
score a split again -- on the test split the figures must equal the run's ``metrics.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data.conversation import DataBundle
from ..errors import ConfigError, RunDirError
from ..runs import RunDir
from .metrics import HEADLINE
from .scoring import score
from .setup import as_items, load_data, resolve_model_config, resolve_speakers


def load_run(run_dir: str | Path, overrides: list[str] | None = None):
    """(config, model) of a run directory. ``overrides`` may change the data only."""
    run = RunDir(run_dir).require()
    return run.config(overrides), run.model()


def evaluate_run(
    run_dir: str | Path, split: str = "test", overrides: list[str] | None = None, data: DataBundle | None = None
) -> dict[str, Any]:
    """Metrics of a saved run on ``split``, and whether they match its metrics.json.

    ``data`` is for runs trained on a DataBundle passed in Python (``train(data=...)``):
    their config cannot rebuild it, so it must be given again.
    """
    cfg, model = load_run(run_dir, overrides)
    if split == "valid" and cfg.train.selection == "crossval":
        raise ConfigError(
            f"{run_dir}: chose its epoch by cross-validation over the training dialogues: it has no validation "
            "split to re-score (its valid figures are the pooled left-out scores)"
        )
    run = RunDir(run_dir)
    saved = run.metrics() if run.finished else {}
    bundle = data if data is not None else load_data(cfg)
    if data is None and not overrides and saved.get("data") not in (None, bundle.source):
        raise RunDirError(
            f"{run_dir}: trained on {saved['data']!r}, which its config cannot rebuild; "
            "pass that data to evaluate_run(data=...)"
        )
    resolve_model_config(cfg, bundle)  # refuses data whose sizes differ from the model's
    resolve_speakers(cfg, bundle)  # the saved vocabulary (identity) is kept, not rebuilt
    metrics = score(model, as_items(cfg, bundle.splits[split]), bundle.label_names)
    matches = None
    if split in saved and not overrides:
        ref = saved[split]
        matches = all(ref[k] == metrics[k] for k in HEADLINE) and ref["confusion_matrix"] == metrics["confusion_matrix"]
    # The data files differ from the ones the run was trained on (same path, new bytes)?
    changed = (
        bool(saved.get("data_sha256")) and data is None and not overrides and saved["data_sha256"] != bundle.fingerprint
    )
    return {
        "split": split,
        "metrics": metrics,
        "matches_saved": matches,
        "data_changed": changed,
        "finished": run.finished,
    }
