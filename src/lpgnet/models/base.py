"""What every model shares: the IO config, the output record, checked and z-scored inputs,
speaker embeddings, masked pooling and positions."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ..errors import ConfigError, DataError

Modality = Literal["text", "audio"]


@dataclass
class IOConfig:
    """What every model needs to know about its data: input sizes, classes, modalities.
    The sizes are filled from the data by the trainer; when set they must match it."""

    d_text: int | None = None
    d_audio: int | None = None
    num_classes: int | None = None
    modalities: list[Modality] = field(default_factory=lambda: ["text", "audio"])

    @property
    def frame_level(self) -> bool:
        """Whether the model reads each utterance's frame sequences (one item per utterance,
        LPGNet (Frame)) rather than one vector per utterance: the trainer batches and
        standardises its inputs differently, and it cannot be scored with a modality left out."""
        return False

    def validate(self, where: str = "model") -> None:
        for name in ("d_text", "d_audio"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{where}.{name}: expected a positive integer or null, got {value}")
        if self.num_classes is not None and self.num_classes < 2:
            raise ConfigError(f"{where}.num_classes: expected at least 2, got {self.num_classes}")
        if not self.modalities or len(set(self.modalities)) != len(self.modalities):
            raise ConfigError(
                f"{where}.modalities: expected a non-empty list of distinct modalities, got {self.modalities}"
            )

    def input_dims(self, where: str = "model") -> dict[str, int]:
        """{modality: input size} for the modalities used; all sizes must be known."""
        needed = ["num_classes"] + [f"d_{m}" for m in self.modalities]
        missing = [n for n in needed if getattr(self, n) is None]
        if missing:
            raise ConfigError(
                f"{where}.{missing[0]}: not set (the trainer fills it from the data; set it to build directly)"
            )
        return {m: getattr(self, f"d_{m}") for m in self.modalities}


@dataclass
class ModelOutput:
    """What every registered model returns.

    ``logits`` (B×N×C) is the prediction (SPEC (15)); ``student_logits`` holds the
    unimodal heads of self-distillation (SPEC (18)), used by the loss in training only.
    ``present`` maps each modality to its B×N presence mask (False where it was
    missing: NaN features, or not given). ``alpha`` is the multimodal gate per utterance (B×N×M, M modalities in
    ``modalities`` order; with the per-dimension "vector" gate it is the mean over the d
    dimensions of ``alpha_full``, B×N×M×d). ``attention`` maps each LPIA path to its
    B×heads×N×N weights, when asked for.
    """

    logits: Tensor
    student_logits: dict[str, Tensor] = field(default_factory=dict)
    alpha: Tensor | None = None
    alpha_full: Tensor | None = None
    attention: dict[str, Tensor] | None = None
    modalities: tuple[str, ...] = ()
    present: dict[str, Tensor] | None = None


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``x`` (B×N×d) over the valid positions of ``mask`` (B×N); 0 for empty rows."""
    weights = mask.to(x.dtype).unsqueeze(-1)
    return (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def sinusoidal_positions(n: int, d: int, device: torch.device | None = None) -> Tensor:
    """The Transformer's fixed sin/cos position code, N×d (d even or odd)."""
    pos = torch.arange(n, dtype=torch.float32, device=device).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : d // 2]
    return pe


class FeatureNorm(nn.Module):
    """z-scores one modality's input with statistics of the training split.

    Not part of the paper: encoder embeddings and classifier logits live on very
    different scales, and keeping the statistics as buffers means a saved model applies
    the same scaling at prediction time without any side file.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def set_stats(self, mean: Tensor, std: Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp(min=1e-6))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


def check_input(name: str, x: Tensor | None, expected_dim: int, mask: Tensor) -> Tensor:
    """A clear error for a wrong feature size before it reaches a matmul deep inside."""
    if x is None:
        raise DataError(f"{name} features: required here, got none")
    if x.dim() != 3:
        raise DataError(f"{name} features: expected a batch×utterances×dim tensor, got shape {tuple(x.shape)}")
    if x.shape[-1] != expected_dim:
        raise DataError(f"{name} features: expected dimension {expected_dim}, got {x.shape[-1]}")
    if x.shape[:2] != mask.shape:
        raise DataError(f"{name} features: shape {tuple(x.shape[:2])} does not match the mask {tuple(mask.shape)}")
    return x


class ModalityInputs(nn.Module):
    """Checks and z-scores each modality's input: the first step of every model."""

    def __init__(self, dims: dict[str, int]) -> None:
        super().__init__()
        self.dims = dict(dims)
        self.norm = nn.ModuleDict({m: FeatureNorm(d) for m, d in dims.items()})

    def forward(self, given: dict[str, Tensor | None], mask: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """(z-scored inputs, presence masks B×N per modality).

        A modality is *missing* for an utterance when its feature row is NaN, and for
        every utterance when it is given as None: its input there is 0 (the training
        mean after z-scoring) and its presence mask False, so the models can leave it
        out. An utterance with no modality at all is an error.
        """
        inputs, present = {}, {}
        for m, d in self.dims.items():
            x = given.get(m)
            if x is None:
                p = torch.zeros_like(mask)
                x = torch.zeros(*mask.shape, d, dtype=self.norm[m].mean.dtype, device=mask.device)
            else:
                check_input(m, x, d, mask)
                p = mask & ~torch.isnan(x).any(-1)
                x = torch.where(p.unsqueeze(-1), x, torch.zeros((), dtype=x.dtype, device=x.device))
            inputs[m] = self.norm[m](x) * p.unsqueeze(-1).to(x.dtype)
            present[m] = p
        if bool((mask & ~torch.stack(list(present.values())).any(0)).any()):
            raise DataError(
                f"an utterance has none of the model's modalities ({', '.join(self.dims)}): nothing to predict from"
            )
        return inputs, present

    def set_stats(self, stats: dict[str, tuple[Tensor, Tensor]]) -> None:
        """Store the training split's per-feature mean and std (see FeatureNorm)."""
        for m, (mean, std) in stats.items():
            if m in self.norm:
                self.norm[m].set_stats(mean, std)


@dataclass
class SpeakerConfig:
    """Speaker embeddings (SDT adds them to its inputs; LPGNet drops them by design).

    ``embedding``: ``none``; ``party`` -- who speaks in *this* dialogue (order of first
    appearance); ``gender`` -- the speaker's gender (M = 0, F = 1), as SDT's IEMOCAP
    loader indexes speakers; ``identity`` -- the training split's speaker names
    (``vocab``, filled by the trainer), every unseen speaker sharing one "unknown"
    embedding. ``max_speakers`` bounds ``party``.
    """

    embedding: Literal["none", "party", "gender", "identity"] = "none"
    max_speakers: int = 9
    vocab: list[str] | None = None

    def validate(self, where: str) -> None:
        if self.max_speakers < 1:
            raise ConfigError(f"{where}.max_speakers: expected a positive integer, got {self.max_speakers}")
        if self.vocab is not None and len(set(self.vocab)) != len(self.vocab):
            raise ConfigError(f"{where}.vocab: speaker names must be distinct")

    def size(self) -> int:
        """Rows of the embedding table."""
        if self.embedding == "identity":
            if self.vocab is None:
                raise ConfigError("model.speakers.vocab: not set (the trainer fills it from the training split)")
            return len(self.vocab) + 1  # row 0: any speaker not seen in training
        if self.embedding == "gender":
            return 2
        return self.max_speakers


def embeds_speakers(model_config: Any) -> bool:
    """Whether a model adds speaker embeddings (a ``speakers`` section that is not ``none``)."""
    spk = getattr(model_config, "speakers", None)
    return spk is not None and spk.embedding != "none"


def speaker_scheme(model_cfg: Any) -> list[str] | str | None:
    """How the data turns speaker names into indices for this model
    (``lpgnet.data.batching.speaker_indices``): the identity vocabulary, ``"gender"``, or
    None (order of appearance in the dialogue)."""
    spk = getattr(model_cfg, "speakers", None)
    if spk is None:
        return None
    return {"identity": spk.vocab, "gender": "gender"}.get(spk.embedding)


class SpeakerEmbedding(nn.Module):
    """E[speaker index] (B×N×d), zero at padding; see :class:`SpeakerConfig`."""

    def __init__(self, config: SpeakerConfig, d_model: int) -> None:
        super().__init__()
        self.mode = config.embedding
        self.table = nn.Embedding(config.size(), d_model)

    def forward(self, speakers: Tensor | None, mask: Tensor) -> Tensor:
        if speakers is None or speakers.shape != mask.shape:
            got = None if speakers is None else tuple(speakers.shape)
            raise DataError(
                f"speakers: this model embeds speakers ({self.mode}); expected a {tuple(mask.shape)} "
                f"tensor of speaker indices, got {got}"
            )
        speakers = speakers.masked_fill(~mask, 0)
        if int(speakers.max()) >= self.table.num_embeddings:
            raise DataError(
                f"speakers: a dialogue has more than {self.table.num_embeddings} speakers (model.speakers.max_speakers)"
            )
        return self.table(speakers) * mask.unsqueeze(-1).to(self.table.weight.dtype)
