"""LPGNet: lightweight parallel attention and gated fusion for multimodal emotion
recognition in conversations (He & Xiao). See README.md and docs/MODEL.md.

Importing the package loads the config schema and every model (which registers them in
``lpgnet.registry``), nothing more: the training loop and the experiment runner load on
first use of ``lpgnet.train``, ``lpgnet.evaluate_run`` or ``lpgnet.run_experiment``, so
code that only predicts (``lpgnet.serving``) never imports training.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import DataConfig, LossConfig, RunConfig, TrainConfig, load_config
from .errors import ConfigError, DataError, LPGNetError, RunDirError
from .models import (
    SDT,
    GRUBaseline,
    GRUConfig,
    LinearBaseline,
    LinearConfig,
    LPGNet,
    LPGNetConfig,
    SDTConfig,
    TransformerBaseline,
    TransformerConfig,
    available_models,
    build_model,
    load_pretrained,
)
from .models.lpgnet.distillation import self_distillation_loss

# the training side of the public API: name -> the module that defines it, loaded on first use
_TRAINING_API = {
    "train": "training.loop",
    "TrainResult": "training.loop",
    "evaluate_run": "training.evaluate",
    "compute_metrics": "training.metrics",
    "run_experiment": "experiments.runner",
}


def __getattr__(name: str) -> Any:
    if name in _TRAINING_API:
        return getattr(importlib.import_module(f".{_TRAINING_API[name]}", __name__), name)
    raise AttributeError(f"module 'lpgnet' has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "DataConfig",
    "DataError",
    "GRUBaseline",
    "GRUConfig",
    "SDT",
    "SDTConfig",
    "TransformerBaseline",
    "TransformerConfig",
    "LPGNet",
    "LPGNetConfig",
    "LPGNetError",
    "LinearBaseline",
    "LinearConfig",
    "LossConfig",
    "RunConfig",
    "RunDirError",
    "TrainConfig",
    "TrainResult",
    "available_models",
    "build_model",
    "compute_metrics",
    "evaluate_run",
    "load_config",
    "load_pretrained",
    "self_distillation_loss",
    "run_experiment",
    "train",
]
__version__ = "0.1.0"
