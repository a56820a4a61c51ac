"""``save_pretrained`` / ``from_pretrained`` for every registered model, via safetensors.

One file holds everything: the weights, and the model's config as JSON in the
safetensors metadata. Loading reads tensors and JSON only -- nothing is ever unpickled,
so a checkpoint from an untrusted source cannot run code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ..config import model_config_from_dict, to_dict
from ..errors import RunDirError
from ..files import atomic_path
from ..registry import build_model

WEIGHTS_NAME = "model.safetensors"
_CONFIG_KEY = "lpgnet_model_config"


def _weights_file(path: str | Path) -> Path:
    path = Path(path)
    return path / WEIGHTS_NAME if path.is_dir() else path


def save_pretrained(model: torch.nn.Module, path: str | Path) -> Path:
    """Write ``model.safetensors`` (into ``path`` if it is a directory), atomically."""
    target = _weights_file(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {_CONFIG_KEY: json.dumps(to_dict(model.config)), "format": "pt"}
    with atomic_path(target) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return target


def read_model_config(path: str | Path) -> Any:
    """The model config stored in a checkpoint's metadata, as its dataclass."""
    target = _weights_file(path)
    if not target.exists():
        raise RunDirError(f"{target}: model weights not found")
    try:
        with safe_open(str(target), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise RunDirError(f"{target}: not a readable safetensors file ({exc})") from None
    if _CONFIG_KEY not in meta:
        raise RunDirError(f"{target}: metadata field '{_CONFIG_KEY}' missing: not written by lpgnet")
    try:
        raw = json.loads(meta[_CONFIG_KEY])
    except json.JSONDecodeError:
        raise RunDirError(f"{target}: metadata field '{_CONFIG_KEY}' is not valid JSON") from None
    return model_config_from_dict(raw, f"{target} (metadata)")


def load_pretrained(path: str | Path, map_location: str = "cpu") -> torch.nn.Module:
    """Rebuild the registered model from a checkpoint and load its weights strictly."""
    config = read_model_config(path)
    config.validate("model")
    model = build_model(config)
    target = _weights_file(path)
    state = load_file(str(target), device=map_location)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RunDirError(
            f"{target}: weights do not match the stored config (missing: {missing[:3]}, unexpected: {unexpected[:3]})"
        )
    return model.eval()


class PretrainedMixin:
    """Hugging Face style methods for a model that has a ``config`` attribute."""

    config: Any

    def save_pretrained(self, path: str | Path) -> Path:
        return save_pretrained(self, path)  # type: ignore[arg-type]

    @classmethod
    def from_pretrained(cls, path: str | Path, map_location: str = "cpu") -> Any:
        model = load_pretrained(path, map_location)
        if not isinstance(model, cls):
            raise RunDirError(f"{_weights_file(path)}: holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def num_parameters(self, inference_only: bool = False) -> int:
        """Trainable parameters; ``inference_only`` leaves out the training-only students."""
        params = self.named_parameters()  # type: ignore[attr-defined]
        return sum(
            p.numel() for n, p in params if p.requires_grad and not (inference_only and n.startswith("students."))
        )
