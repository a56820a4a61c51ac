"""LPGNet, assembled: LPIA (§3.3) -> dual-gated fusion (§3.4) -> classifier (§3.5),
with the self-distillation students (§3.6) beside the classifier.

    X_t, X_a --FeatureNorm--> LPIA --> {O_tt, O_aa, O_a->t, O_t->a}
             --DualGatedFusion--> F, {F_t, F_a}, alpha
             --EmotionClassifier--> z          (prediction)
             --StudentHeads--> {z_t, z_a}      (training only)

No speaker identity enters by default (``speakers.embedding: none``); the option to add
speaker embeddings exists for the speaker-dependence study only. Every variant the paper reports is a field of
:class:`LPGNetConfig` (see ``docs/MODEL.md`` for the table of switches).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from torch import Tensor, nn

from ...errors import ConfigError
from ...registry import register_model
from ..base import (
    IOConfig,
    ModalityInputs,
    ModelOutput,
    SpeakerConfig,
    SpeakerEmbedding,
    sinusoidal_positions,
)
from ..checkpoint import PretrainedMixin
from .classifier import EmotionClassifier, StudentHeads
from .fusion import ConcatFusion, DualGatedFusion
from .lpia import LPIA, active_paths


@dataclass
class LPGNetConfig(IOConfig):
    """LPGNet's hyperparameters. Defaults are the paper's; fields marked open are SPEC's
    open choices (see docs/MODEL.md for how each default was chosen)."""

    name: Literal["lpgnet"] = "lpgnet"
    d_model: int = 768
    heads: int = 8  # open
    kernel_size: int = 1  # (2) paper: 1; open whether >1 helps
    d_ff_mult: int = 4  # (8) d_ff = d_ff_mult * d_model; open: 2 or 4
    dropout: float = 0.1
    ffn_layer_norm: bool = False  # (8) LayerNorm after the FFN residual; open
    attn_out_proj: bool = False  # (3) has none; true = a standard multi-head output layer
    position: Literal["none", "sinusoidal"] = "none"  # not in the paper: utterance order
    # Streaming: utterance n is predicted from utterances 1..n only (causal attention,
    # running-mean compression (6), left-padded projection); not in the paper.
    causal: bool = False
    # not in the paper (it drops them): added to H_m like positions; for the study only
    speakers: SpeakerConfig = field(default_factory=SpeakerConfig)
    # Ablations (Table 3)
    intra_attention: bool = True
    inter_attention: bool = True
    ffn: bool = True
    fusion: Literal["dual_gated", "concat"] = "dual_gated"
    multimodal_gate: Literal["scalar", "vector"] = "vector"  # (13) open
    # (6) the paper's BatchNorm over the batch's dialogue summaries, or LayerNorm per
    # summary (not in the paper; the same computation in training and evaluation)
    compression_norm: Literal["batch", "layer"] = "batch"
    # Not in the paper (its only dropout is in the FFN (8)): dropout on the attention
    # weights (5), and on the attention output A before the residual sum (7).
    attn_dropout: float = 0.0
    residual_dropout: float = 0.0

    def validate(self, where: str = "model") -> None:
        super().validate(where)
        for name in ("d_model", "heads", "d_ff_mult"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name}: expected a positive integer, got {getattr(self, name)}")
        if self.d_model % self.heads:
            raise ConfigError(f"{where}.heads: d_model={self.d_model} is not divisible by heads={self.heads}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ConfigError(
                f"{where}.kernel_size: expected an odd positive integer (keeps length N), got {self.kernel_size}"
            )
        for name in ("dropout", "attn_dropout", "residual_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{where}.{name}: expected a number in [0, 1), got {getattr(self, name)}")
        self.speakers.validate(f"{where}.speakers")
        if not active_paths(self.modalities, self.intra_attention, self.inter_attention):
            raise ConfigError(
                f"{where}: no attention path left (modalities={list(self.modalities)}, "
                f"intra_attention={self.intra_attention}, inter_attention={self.inter_attention})"
            )


@register_model("lpgnet", LPGNetConfig)
class LPGNet(PretrainedMixin, nn.Module):
    """LPGNet for utterance-level features. ``forward(text, audio, mask)``:
    text B×N×d_text, audio B×N×d_audio (either may be None if the config does not use
    it), mask B×N (True = real utterance). Returns a :class:`ModelOutput`."""

    def __init__(self, config: LPGNetConfig) -> None:
        super().__init__()
        config.validate()
        dims = config.input_dims()
        self.config = config
        self.modalities: tuple[str, ...] = tuple(config.modalities)
        self.paths = active_paths(self.modalities, config.intra_attention, config.inter_attention)
        self.inputs = ModalityInputs(dims)
        self.lpia = LPIA(
            dims,
            config.d_model,
            config.heads,
            config.kernel_size,
            config.d_ff_mult * config.d_model,
            config.dropout,
            self.paths,
            use_ffn=config.ffn,
            layer_norm=config.ffn_layer_norm,
            out_proj=config.attn_out_proj,
            causal=config.causal,
            compression_norm=config.compression_norm,
            attn_dropout=config.attn_dropout,
            residual_dropout=config.residual_dropout,
        )
        if config.fusion == "dual_gated":
            self.fusion: nn.Module = DualGatedFusion(
                config.d_model, self.paths, self.modalities, config.multimodal_gate
            )
        else:
            self.fusion = ConcatFusion(config.d_model, self.paths, self.modalities)
        self.classifier = EmotionClassifier(config.d_model, config.num_classes)  # type: ignore[arg-type]
        self.students = StudentHeads(config.d_model, config.num_classes, self.modalities)  # type: ignore[arg-type]
        self.speaker_embedding = (
            SpeakerEmbedding(config.speakers, config.d_model) if config.speakers.embedding != "none" else None
        )

    def forward(
        self,
        text: Tensor | None,
        audio: Tensor | None,
        mask: Tensor,
        need_weights: bool = False,
        speakers: Tensor | None = None,
    ) -> ModelOutput:
        mask = mask.bool()
        inputs, masks = self.inputs({"text": text, "audio": audio}, mask)  # masks: per-modality presence
        extra = None  # added to every H_m after the projection (2)
        if self.config.position == "sinusoidal":
            extra = sinusoidal_positions(mask.shape[1], self.config.d_model, mask.device)
        if self.speaker_embedding is not None:
            spk = self.speaker_embedding(speakers, mask)
            extra = spk if extra is None else extra + spk
        positions = None if extra is None else {m: extra for m in self.modalities}
        outputs, weights = self.lpia(inputs, masks, positions, need_weights=need_weights)  # (2)-(8)
        fused, per_modality, alpha = self.fusion(outputs, masks)  # (9)-(14)
        logits = self.classifier(fused)  # (15)
        students = self.students(per_modality) if self.training else {}  # (18), training only
        return ModelOutput(
            logits=logits,
            student_logits=students,
            alpha=None if alpha is None else alpha.mean(-1),  # B×N×M: per-utterance weights
            alpha_full=alpha,
            attention=weights if need_weights else None,
            modalities=self.modalities,
            present=masks,
        )
