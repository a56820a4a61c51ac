"""Build any model variant by name (timm-style registry).

Each model module registers its ``nn.Module`` class together with its config dataclass::

    @register_model("lpgnet", LPGNetConfig)
    class LPGNet(nn.Module): ...

A config's ``name`` field picks the entry, so ``model: {name: linear}`` in a YAML file is
all it takes to train a baseline with the same trainer. Every registered model takes
``(text, audio, mask)`` and returns a :class:`lpgnet.models.base.ModelOutput`.

A leaf, as timm's registry: it imports nothing of the package, so config, models and
everything above can use it without an import cycle. The entries are filled by
importing ``lpgnet.models``, which ``import lpgnet`` does first: any ``lpgnet.*``
import finds every model registered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_MODELS: dict[str, tuple[type, type]] = {}


def register_model(name: str, config_cls: type) -> Callable[[type], type]:
    def decorator(model_cls: type) -> type:
        if name in _MODELS:
            raise ValueError(f"model {name!r} registered twice")
        _MODELS[name] = (model_cls, config_cls)
        return model_cls

    return decorator


def _entry(name: str) -> tuple[type, type]:
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r} (registered: {', '.join(sorted(_MODELS))})")
    return _MODELS[name]


def model_config_class(name: str) -> type:
    return _entry(name)[1]


def build_model(config: Any) -> Any:
    """Instantiate the registered model for ``config`` (its ``name`` field picks it)."""
    model_cls, config_cls = _entry(config.name)
    if not isinstance(config, config_cls):
        raise TypeError(f"model {config.name!r} expects a {config_cls.__name__}, got {type(config).__name__}")
    return model_cls(config)


def available_models() -> list[str]:
    return sorted(_MODELS)
