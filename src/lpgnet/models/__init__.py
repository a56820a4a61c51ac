"""Every model, registered by importing it: LPGNet (and its frame-level variant), the SDT
peer and the baselines. ``import lpgnet`` imports this package, so the registry
(``lpgnet.registry``) always knows every model before a config names one."""

from ..registry import available_models, build_model
from .baselines import (
    GRUBaseline,
    GRUConfig,
    LinearBaseline,
    LinearConfig,
    TransformerBaseline,
    TransformerConfig,
)
from .checkpoint import load_pretrained, save_pretrained
from .lpgnet.frame import FrameLPGNet, FrameLPGNetConfig
from .lpgnet.model import LPGNet, LPGNetConfig
from .sdt import SDT, SDTConfig

__all__ = [
    "SDT",
    "FrameLPGNet",
    "FrameLPGNetConfig",
    "GRUBaseline",
    "GRUConfig",
    "LPGNet",
    "LPGNetConfig",
    "LinearBaseline",
    "LinearConfig",
    "SDTConfig",
    "TransformerBaseline",
    "TransformerConfig",
    "available_models",
    "build_model",
    "load_pretrained",
    "save_pretrained",
]
