"""Baselines trained by the same trainer on the same features.

``linear``: the paper's "Linear" row -- one linear layer on the concatenated utterance
features, no dialogue context at all. It is the yardstick that tells whether LPGNet's
gains come from modelling the conversation or merely from the features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from .checkpoint import PretrainedMixin
from .layers import ModalityInputs, ModelOutput
from .model import Modality, check_io_dims, require_built
from .registry import register_model


@dataclass
class LinearConfig:
    name: Literal["linear"] = "linear"
    d_text: int | None = None
    d_audio: int | None = None
    num_classes: int | None = None
    modalities: list[Modality] = field(default_factory=lambda: ["text", "audio"])

    def validate(self, where: str = "model") -> None:
        check_io_dims(self, where)


@register_model("linear", LinearConfig)
class LinearBaseline(PretrainedMixin, nn.Module):
    """Context-free: logits_n = W [x_t,n ; x_a,n] + b, each utterance on its own."""

    def __init__(self, config: LinearConfig) -> None:
        super().__init__()
        config.validate()
        require_built(config)
        self.config = config
        self.modalities = tuple(config.modalities)
        dims = {m: getattr(config, f"d_{m}") for m in self.modalities}
        self.inputs = ModalityInputs(dims)
        self.fc = nn.Linear(sum(dims.values()), config.num_classes)  # type: ignore[arg-type]

    def forward(self, text: Tensor | None, audio: Tensor | None, mask: Tensor, need_weights: bool = False) -> ModelOutput:
        mask = mask.bool()
        feats = self.inputs({"text": text, "audio": audio}, mask)
        return ModelOutput(logits=self.fc(torch.cat(list(feats.values()), dim=-1)), modalities=self.modalities)
