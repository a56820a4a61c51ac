"""Baselines trained by the same trainer on the same features.

``linear``: the paper's "Linear" row -- one linear layer on the concatenated utterance
features, no dialogue context at all. It is the yardstick that tells whether LPGNet's
gains come from modelling the conversation or merely from the features.

``gru``: a bidirectional GRU over the dialogue, reading each utterance's projected,
concatenated features -- the classic recurrent context model (DialogueRNN's family).

``transformer``: one standard Transformer encoder layer (PyTorch's own) over the same
concatenated projection, with sinusoidal positions: plain self-attention context without
LPGNet's per-modality paths, gates or distillation.

Neither context baseline has student heads, so the self-distillation loss reduces to
gamma1 times the cross-entropy, and the choice of epoch is on validation as for LPGNet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import register_model
from .base import IOConfig, ModalityInputs, ModelOutput, sinusoidal_positions
from .checkpoint import PretrainedMixin


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

    def forward(
        self,
        text: Tensor | None,
        audio: Tensor | None,
        mask: Tensor,
    ) -> ModelOutput:
        mask = mask.bool()
        feats, present = self.inputs({"text": text, "audio": audio}, mask)  # missing -> 0, the training mean
        return ModelOutput(
            logits=self.fc(torch.cat(list(feats.values()), dim=-1)), modalities=self.modalities, present=present
        )


@dataclass
class ContextConfig(IOConfig):
    """Shared by the two context baselines: projection size and dropout."""

    d_model: int = 256
    dropout: float = 0.3

    def validate(self, where: str = "model") -> None:
        super().validate(where)
        if self.d_model < 1:
            raise ConfigError(f"{where}.d_model: expected a positive integer, got {self.d_model}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{where}.dropout: expected a number in [0, 1), got {self.dropout}")


class ContextModel(PretrainedMixin, nn.Module):
    """Base of the context baselines: ``inputs`` (where the trainer stores the input
    statistics) lives inside the shared projection ``embed``."""

    embed: ConcatProjection

    @property
    def inputs(self) -> ModalityInputs:
        return self.embed.inputs


class ConcatProjection(nn.Module):
    """Checked, z-scored inputs -> [x_t ; x_a] -> Linear -> d, zero at padding."""

    def __init__(self, dims: dict[str, int], d_model: int, dropout: float) -> None:
        super().__init__()
        self.inputs = ModalityInputs(dims)
        self.proj = nn.Sequential(nn.Linear(sum(dims.values()), d_model), nn.ReLU(), nn.Dropout(dropout))

    def forward(self, text: Tensor | None, audio: Tensor | None, mask: Tensor) -> Tensor:
        feats, _ = self.inputs({"text": text, "audio": audio}, mask)  # missing -> 0, the training mean
        return self.proj(torch.cat(list(feats.values()), dim=-1)) * mask.unsqueeze(-1).to(torch.float32)


@dataclass
class GRUConfig(ContextConfig):
    name: Literal["gru"] = "gru"
    layers: int = 1

    def validate(self, where: str = "model") -> None:
        super().validate(where)
        if self.layers < 1:
            raise ConfigError(f"{where}.layers: expected a positive integer, got {self.layers}")


@register_model("gru", GRUConfig)
class GRUBaseline(ContextModel):
    """Bidirectional GRU over the dialogue; padded positions never enter the recurrence
    (packed sequences), so a dialogue's predictions do not depend on its batch-mates."""

    def __init__(self, config: GRUConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.modalities = tuple(config.modalities)
        self.embed = ConcatProjection(config.input_dims(), config.d_model, config.dropout)
        self.gru = nn.GRU(
            config.d_model,
            config.d_model // 2 or 1,
            num_layers=config.layers,
            batch_first=True,
            bidirectional=True,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(config.dropout)
        self.fc = nn.Linear(2 * (config.d_model // 2 or 1), config.num_classes)  # type: ignore[arg-type]

    def forward(
        self,
        text: Tensor | None,
        audio: Tensor | None,
        mask: Tensor,
    ) -> ModelOutput:
        mask = mask.bool()
        x = self.embed(text, audio, mask)
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        h, _ = nn.utils.rnn.pad_packed_sequence(self.gru(packed)[0], batch_first=True, total_length=mask.shape[1])
        return ModelOutput(logits=self.fc(self.drop(h)), modalities=self.modalities)


@dataclass
class TransformerConfig(ContextConfig):
    name: Literal["transformer"] = "transformer"
    heads: int = 4
    d_ff_mult: int = 4

    def validate(self, where: str = "model") -> None:
        super().validate(where)
        if self.heads < 1 or self.d_model % self.heads:
            raise ConfigError(f"{where}.heads: d_model={self.d_model} is not divisible by heads={self.heads}")
        if self.d_ff_mult < 1:
            raise ConfigError(f"{where}.d_ff_mult: expected a positive integer, got {self.d_ff_mult}")


@register_model("transformer", TransformerConfig)
class TransformerBaseline(ContextModel):
    """One ``nn.TransformerEncoderLayer`` (post-LayerNorm, as the original Transformer)
    over the concatenated projection plus sinusoidal positions; padding masked as keys."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.modalities = tuple(config.modalities)
        self.embed = ConcatProjection(config.input_dims(), config.d_model, config.dropout)
        self.encoder = nn.TransformerEncoderLayer(
            config.d_model, config.heads, config.d_ff_mult * config.d_model, config.dropout, batch_first=True
        )
        self.fc = nn.Linear(config.d_model, config.num_classes)  # type: ignore[arg-type]

    def forward(
        self,
        text: Tensor | None,
        audio: Tensor | None,
        mask: Tensor,
    ) -> ModelOutput:
        mask = mask.bool()
        x = self.embed(text, audio, mask) + sinusoidal_positions(mask.shape[1], self.config.d_model, mask.device)
        h = self.encoder(x, src_key_padding_mask=~mask)
        return ModelOutput(logits=self.fc(h) * mask.unsqueeze(-1).to(h.dtype), modalities=self.modalities)
