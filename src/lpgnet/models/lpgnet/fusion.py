"""§3.4 Dual-gated fusion, SPEC equations (9)-(14).

Stage 1, unimodal gates (9)-(11): every LPIA output is filtered by its own sigmoid gate.
Stage 2, per-modality merge (12): the gated intra- and inter-modal streams of a modality
are concatenated and projected back to d, giving F_t and F_a (also the inputs of the
self-distillation students). Stage 3, multimodal gate (13)-(14): softmax across
modalities, then a weighted sum.

SPEC (13) leaves the gate's granularity open; both readings are here:
``"scalar"`` -- one weight per utterance and modality, s_m = w^T F_m;
``"vector"`` -- one weight per feature dimension, s_m = W_s F_m (as in SDT).
In both, the score map is shared by the modalities (as in SDT): what differs between
F_t and F_a is their content, which W_t and W_a already make modality-specific.

The ablation "w/o dual-gated fusion" (``ConcatFusion``) drops all gates: streams are
concatenated and projected per modality, then the modalities are concatenated and
projected again. A missing modality (see ``ModalityInputs``) gets weight 0 in the
multimodal gate; the concatenation ablation has no gate and simply sees zeros.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from .lpia import PATHS


class UnimodalGate(nn.Module):
    """(9) G(H) = sigmoid(W_g H) * H."""

    def __init__(self, d_model: int, bias: bool = True) -> None:
        super().__init__()
        self.proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, h: Tensor) -> Tensor:
        return torch.sigmoid(self.proj(h)) * h


class MultimodalGate(nn.Module):
    """(13)-(14) [alpha_t, alpha_a] = softmax over modalities; F = sum_m alpha_m F_m."""

    def __init__(self, d_model: int, mode: Literal["scalar", "vector"]) -> None:
        super().__init__()
        # No bias: a bias shared by the modalities cancels in the softmax across them.
        self.score = nn.Linear(d_model, 1 if mode == "scalar" else d_model, bias=False)

    def forward(self, feats: list[Tensor], present: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
        stacked = torch.stack(feats, dim=-2)  # B×N×M×d
        scores = self.score(stacked)
        if present is not None:  # a missing modality gets weight 0 (where any modality is there)
            here = torch.stack(present, dim=-1)  # B×N×M
            here = here | ~here.any(-1, keepdim=True)
            scores = scores.masked_fill(~here.unsqueeze(-1), float("-inf"))
        alpha = scores.softmax(dim=-2)  # (13) B×N×M×(1 or d), softmax across M
        return (alpha * stacked).sum(-2), alpha  # (14)


def streams_by_modality(paths: list[str], modalities: tuple[str, ...]) -> dict[str, list[str]]:
    """Which LPIA outputs belong to which modality: the ones it queries with (10)-(11)."""
    return {m: [p for p in paths if PATHS[p][0] == m] for m in modalities}


class DualGatedFusion(nn.Module):
    """(9)-(14). Returns F (B×N×d), the per-modality F_m and the gate weights alpha."""

    def __init__(
        self,
        d_model: int,
        paths: list[str],
        modalities: tuple[str, ...],
        mode: Literal["scalar", "vector"],
        gate_bias: bool = True,
    ) -> None:
        super().__init__()
        self.streams = streams_by_modality(paths, modalities)
        self.gates = nn.ModuleDict({p: UnimodalGate(d_model, gate_bias) for p in paths})  # G_1..G_4
        self.merge = nn.ModuleDict(  # (12) W_t, W_a: [intra ; inter] -> d
            {m: nn.Linear(len(s) * d_model, d_model) for m, s in self.streams.items()}
        )
        self.gate = MultimodalGate(d_model, mode) if len(modalities) > 1 else None

    def per_modality(self, outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """(9)-(12): each LPIA output through its unimodal gate, merged per modality into F_m."""
        return {
            m: self.merge[m](torch.cat([self.gates[p](outputs[p]) for p in s], dim=-1)) for m, s in self.streams.items()
        }

    def combine(
        self, per_modality: dict[str, Tensor], present: dict[str, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        """(13)-(14): the multimodal gate over the F_m -> F and its weights alpha."""
        feats = list(per_modality.values())
        if self.gate is None:  # one modality: nothing to weigh
            return feats[0], torch.ones_like(feats[0][..., :1]).unsqueeze(-2)
        return self.gate(feats, [present[m] for m in per_modality] if present is not None else None)

    def forward(
        self, outputs: dict[str, Tensor], present: dict[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        per_modality = self.per_modality(outputs)
        fused, alpha = self.combine(per_modality, present)
        return fused, per_modality, alpha


class ConcatFusion(nn.Module):
    """Ablation "w/o dual-gated fusion": plain concatenation + linear, no gates at all."""

    def __init__(self, d_model: int, paths: list[str], modalities: tuple[str, ...]) -> None:
        super().__init__()
        self.streams = streams_by_modality(paths, modalities)
        self.merge = nn.ModuleDict({m: nn.Linear(len(s) * d_model, d_model) for m, s in self.streams.items()})
        self.out = nn.Linear(len(modalities) * d_model, d_model) if len(modalities) > 1 else None

    def forward(
        self, outputs: dict[str, Tensor], present: dict[str, Tensor] | None = None
    ) -> tuple[Tensor, dict[str, Tensor], None]:
        per_modality = {m: self.merge[m](torch.cat([outputs[p] for p in s], dim=-1)) for m, s in self.streams.items()}
        feats = list(per_modality.values())
        fused = feats[0] if self.out is None else self.out(torch.cat(feats, dim=-1))
        return fused, per_modality, None
