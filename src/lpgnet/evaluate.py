"""Re-score a saved run: rebuild its data from ``config.yaml``, load its weights, and
score the test split again -- the figures must equal the run's ``metrics.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .checkpoint import load_pretrained
from .config import load_config
from .data.batching import tensorize
from .errors import RunDirError
from .metrics import HEADLINE
from .train import FINISHED_MARKER, load_data, resolve_model_config, score


def load_run(run_dir: str | Path, overrides: list[str] | None = None):
    """(config, model) of a run directory; ``overrides`` are ``--set`` pairs for the data."""
    run = Path(run_dir)
    if not run.is_dir():
        raise RunDirError(f"{run}: run directory not found")
    for name in ("config.yaml", "model.safetensors"):
        if not (run / name).exists():
            raise RunDirError(f"{run}: {name} missing (not a finished lpgnet run?)")
    cfg = load_config(run / "config.yaml", overrides)
    return cfg, load_pretrained(run)


def evaluate_run(run_dir: str | Path, split: str = "test", overrides: list[str] | None = None) -> dict[str, Any]:
    """Metrics of a saved run on ``split``, and whether they match its metrics.json."""
    cfg, model = load_run(run_dir, overrides)
    bundle = load_data(cfg)
    resolve_model_config(cfg, bundle)  # refuses data whose sizes differ from the model's
    metrics = score(model, tensorize(bundle.splits[split]), bundle.label_names)
    saved_path = Path(run_dir) / FINISHED_MARKER
    matches = None
    if saved_path.exists() and not overrides:
        import json

        saved = json.loads(saved_path.read_text())[split]
        matches = all(saved[k] == metrics[k] for k in HEADLINE) and saved["confusion_matrix"] == metrics["confusion_matrix"]
    return {"split": split, "metrics": metrics, "matches_saved": matches}
