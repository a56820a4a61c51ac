"""Baselines trained by the same trainer on the same features.

``linear``: the paper's "Linear" row -- one linear layer on the concatenated utterance
features, no dialogue context at all. It is the yardstick that tells whether LPGNet's
gains come from modelling the conversation or merely from the features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from .checkpoint import PretrainedMixin
from .layers import ModalityInputs, ModelOutput
from .model import IOConfig
from .registry import register_model


@dataclass
class LinearConfig(IOConfig):
    name: Literal["linear"] = "linear"


@register_model("linear", LinearConfig)
class LinearBaseline(PretrainedMixin, nn.Module):
    """Context-free: logits_n = W [x_t,n ; x_a,n] + b, each utterance on its own."""

    def __init__(self, config: LinearConfig) -> None:
        super().__init__()
        config.validate()
        dims = config.input_dims()
        self.config = config
        self.modalities = tuple(config.modalities)
        self.inputs = ModalityInputs(dims)
        self.fc = nn.Linear(sum(dims.values()), config.num_classes)  # type: ignore[arg-type]

    def forward(self, text: Tensor | None, audio: Tensor | None, mask: Tensor, need_weights: bool = False) -> ModelOutput:
        mask = mask.bool()
        feats = self.inputs({"text": text, "audio": audio}, mask)
        return ModelOutput(logits=self.fc(torch.cat(list(feats.values()), dim=-1)), modalities=self.modalities)
