"""SDT (Ma et al., "A Transformer-Based Model With Self-Distillation for Multimodal
Emotion Recognition in Conversations", IEEE TMM 2023): the stacked-Transformer peer that
LPGNet lightens. Written from that paper's description, for two modalities::

    H_m = Conv1d_1(X_m) + PE + E_speaker                 per-modality projection
    text_intra    = Encoder(Q=H_t, K=V=H_t)              intra-modal Transformer
    audio_to_text = Encoder(Q=H_t, K=V=H_a)              inter-modal Transformers
    (and audio_intra, text_to_audio likewise)
    -> unimodal gates -> per-modality reduction -> element-wise multimodal softmax gate
    -> classifier, plus one student head per modality for self-distillation

Each encoder is ``layers`` pre-LayerNorm Transformer layers (multi-head attention with
an output projection and attention dropout, then a GELU feed-forward of size ``d_ff``),
where LPGNet has one attention with global compression and no LayerNorm.

``code`` picks between two readings of SDT. ``described`` (the default, what the
committed results used) follows the paper's description: LayerNorm before every
attention, on the queries and (cross-modal) the context, eps 1e-5, exact GELU, and the
positions, speakers and input dropout applied once to the projected inputs that all
encoders share. ``public`` is the computation of SDT's released code: no LayerNorm
before a first layer's attention (later layers normalise their queries only, and add
the residual to the normalised queries), LayerNorm eps 1e-6 before the feed-forward,
tanh-approximated GELU, and positions, speakers and input dropout applied inside each
encoder to each of its inputs (so every encoder draws its own dropout mask). The rest
of SDT's released recipe is configuration: its teacher is not detached in the KL term
(``loss.detach_teacher: false``), the KL term covers every real utterance
(``loss.kl_on: all``) and IEMOCAP speakers are indexed by gender
(``model.speakers.embedding: gender``); see ``configs/iemocap/sdt-public.yaml``. The gates,
reduction and multimodal gate are LPGNet's :mod:`lpgnet.models.lpgnet.fusion` modules (LPGNet took
them from SDT), here with SDT's bias-free unimodal gates; the student heads take SDT's
ReLU-dropout-linear form. The loss is the trainer's self-distillation loss (22); SDT's
recipe sets all three weights to 1 (``configs/iemocap/sdt.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import register_model
from .base import (
    IOConfig,
    ModalityInputs,
    ModelOutput,
    SpeakerConfig,
    SpeakerEmbedding,
    sinusoidal_positions,
)
from .checkpoint import PretrainedMixin
from .lpgnet.classifier import EmotionClassifier, StudentHeads
from .lpgnet.fusion import DualGatedFusion
from .lpgnet.lpia import PATHS, MaskedAttention, ModalityProjection, active_paths


@dataclass
class SDTConfig(IOConfig):
    """SDT's published recipe as defaults (hidden 1024, 8 heads, d_ff = hidden, dropout 0.5)."""

    name: Literal["sdt"] = "sdt"
    d_model: int = 1024
    heads: int = 8
    layers: int = 1  # Transformer layers per encoder (intra and inter alike)
    d_ff: int | None = None  # feed-forward size; null = d_model, as SDT
    dropout: float = 0.5
    position: bool = True  # sinusoidal positions added to the projected inputs
    speakers: SpeakerConfig = field(default_factory=lambda: SpeakerConfig("party"))
    code: Literal["described", "public"] = "described"  # the paper's description or the released code (module doc)

    def validate(self, where: str = "model") -> None:
        super().validate(where)
        for name in ("d_model", "heads", "layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name}: expected a positive integer, got {getattr(self, name)}")
        if self.d_model % self.heads:
            raise ConfigError(f"{where}.heads: d_model={self.d_model} is not divisible by heads={self.heads}")
        if self.d_ff is not None and self.d_ff < 1:
            raise ConfigError(f"{where}.d_ff: expected a positive integer or null, got {self.d_ff}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"{where}.dropout: expected a number in [0, 1), got {self.dropout}")
        self.speakers.validate(f"{where}.speakers")


class EncoderLayer(nn.Module):
    """Transformer layer whose queries may read another modality: pre-LayerNorm as the
    paper describes it, or as SDT's released code computes it (``public``, module doc)."""

    def __init__(
        self, d_model: int, heads: int, d_ff: int, dropout: float, cross: bool, public: bool = False, first: bool = True
    ) -> None:
        super().__init__()
        eps = 1e-6 if public else 1e-5
        self.public = public
        self.norm_q = None if public and first else nn.LayerNorm(d_model, eps=eps)
        self.norm_kv = nn.LayerNorm(d_model, eps=eps) if cross and not public else None
        self.attn = MaskedAttention(d_model, heads, out_proj=True, dropout=dropout)
        self.norm_ff = nn.LayerNorm(d_model, eps=eps)
        gelu = nn.GELU(approximate="tanh" if public else "none")
        self.ffn = nn.Sequential(
            nn.Linear(d_model, d_ff), gelu, nn.Dropout(dropout), nn.Linear(d_ff, d_model), nn.Dropout(dropout)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, context: Tensor | None, key_mask: Tensor) -> Tensor:
        q = x if self.norm_q is None else self.norm_q(x)
        if context is None:  # self-attention
            kv = q
        else:  # cross-attention: the released code never normalises the context
            kv = context if self.norm_kv is None else self.norm_kv(context)
        x = (q if self.public else x) + self.drop(self.attn(q, kv, key_mask)[0])
        return x + self.ffn(self.norm_ff(x))


class Encoder(nn.Module):
    """``layers`` stacked layers: the stacking LPGNet replaces by parallel blocks."""

    def __init__(
        self, d_model: int, heads: int, d_ff: int, dropout: float, layers: int, cross: bool, public: bool = False
    ) -> None:
        super().__init__()
        self.cross = cross
        self.layers = nn.ModuleList(
            [EncoderLayer(d_model, heads, d_ff, dropout, cross, public, first=i == 0) for i in range(layers)]
        )
        # the released code: positions, speakers and input dropout inside each encoder
        self.embed = nn.Dropout(dropout) if public else None

    def forward(
        self, query: Tensor, context: Tensor, query_mask: Tensor, key_mask: Tensor, extra: Tensor | float = 0.0
    ) -> Tensor:
        if self.embed is not None:
            query, context = self.embed(query + extra), self.embed(context + extra) if self.cross else context
        x = query
        for layer in self.layers:
            x = layer(x, context if self.cross else None, key_mask)
        return x * query_mask.unsqueeze(-1).to(x.dtype)


@register_model("sdt", SDTConfig)
class SDT(PretrainedMixin, nn.Module):
    """SDT for two modalities; same ``forward`` as LPGNet, ``speakers`` used when enabled."""

    def __init__(self, config: SDTConfig) -> None:
        super().__init__()
        config.validate()
        dims = config.input_dims()
        self.config = config
        self.modalities: tuple[str, ...] = tuple(config.modalities)
        self.paths = active_paths(self.modalities, intra=True, inter=True)
        d, d_ff = config.d_model, config.d_ff or config.d_model
        public = config.code == "public"
        self.inputs = ModalityInputs(dims)
        self.project = nn.ModuleDict({m: ModalityProjection(dim, d, 1, bias=False) for m, dim in dims.items()})
        self.speaker_embedding = SpeakerEmbedding(config.speakers, d) if config.speakers.embedding != "none" else None
        self.drop = nn.Dropout(config.dropout)
        self.encoders = nn.ModuleDict(
            {
                p: Encoder(d, config.heads, d_ff, config.dropout, config.layers, PATHS[p][0] != PATHS[p][1], public)
                for p in self.paths
            }
        )
        self.fusion = DualGatedFusion(d, self.paths, self.modalities, "vector", gate_bias=False)
        self.classifier = EmotionClassifier(d, config.num_classes)  # type: ignore[arg-type]
        self.students = StudentHeads(d, config.num_classes, self.modalities, dropout=config.dropout)  # type: ignore[arg-type]

    def forward(
        self,
        text: Tensor | None,
        audio: Tensor | None,
        mask: Tensor,
        speakers: Tensor | None = None,
    ) -> ModelOutput:
        mask = mask.bool()
        inputs, present = self.inputs({"text": text, "audio": audio}, mask)
        extra = 0.0
        if self.config.position:
            extra = extra + sinusoidal_positions(mask.shape[1], self.config.d_model, mask.device)
        if self.speaker_embedding is not None:
            extra = extra + self.speaker_embedding(speakers, mask)
        h = {m: self.project[m](x, present[m]) for m, x in inputs.items()}
        if self.config.code == "public":  # each encoder adds them and draws its own dropout
            inner = extra
        else:  # added once, one dropout mask shared by every encoder
            h = {m: self.drop((x + extra) * present[m].unsqueeze(-1).float()) for m, x in h.items()}
            inner = 0.0
        outputs = {
            p: self.encoders[p](h[PATHS[p][0]], h[PATHS[p][1]], present[PATHS[p][0]], present[PATHS[p][1]], inner)
            for p in self.paths
        }
        fused, per_modality, alpha = self.fusion(outputs, present)
        logits = self.classifier(fused)
        students = self.students(per_modality) if self.training else {}
        return ModelOutput(
            logits=logits,
            student_logits=students,
            alpha=alpha.mean(-1),
            alpha_full=alpha,
            modalities=self.modalities,
            present=present,
        )
