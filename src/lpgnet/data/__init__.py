"""Conversations in memory, their validation, batching, and the built-in synthetic corpus."""

from .conversation import DataBundle, Dialogue
from .synthetic import SyntheticConfig, make_synthetic

__all__ = ["DataBundle", "Dialogue", "SyntheticConfig", "make_synthetic"]
