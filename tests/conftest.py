"""Shared fixtures. Tests run single-threaded: CPU-bound tests in parallel with other
work slow down badly on 2 cores, and one thread keeps float results repeatable."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from lpgnet.data.synthetic import SyntheticConfig, make_synthetic
from lpgnet.model import LPGNet, LPGNetConfig

torch.set_num_threads(1)


def tiny_config(**overrides) -> LPGNetConfig:
    base = dict(d_text=12, d_audio=7, num_classes=4, d_model=16, heads=2, d_ff_mult=2, dropout=0.1)
    base.update(overrides)
    return LPGNetConfig(**base)


def tiny_model(seed: int = 0, **overrides) -> LPGNet:
    torch.manual_seed(seed)
    return LPGNet(tiny_config(**overrides))


@pytest.fixture
def tiny_synthetic():
    return make_synthetic(SyntheticConfig(train_dialogues=24, test_dialogues=8, min_turns=4, max_turns=10, d_text=12, d_audio=7))
