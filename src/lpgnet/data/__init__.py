"""Conversations in memory, their validation, batching, and the built-in synthetic corpus."""

from ..config import SyntheticConfig
from .conversation import DataBundle, Dialogue
from .synthetic import make_synthetic

__all__ = ["DataBundle", "Dialogue", "SyntheticConfig", "make_synthetic"]
