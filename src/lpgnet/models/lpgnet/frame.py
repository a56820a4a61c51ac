"""LPGNet (Frame): the paper's frame-level variant.

Instead of one vector per utterance in a dialogue, the model sees one utterance: its
text token sequence (the text encoder's last hidden states) and its audio frame sequence
(the audio encoder's frame outputs), each cut to ``max_frames`` (512 in the paper), and
predicts that utterance's emotion. The modules are LPGNet's, applied along the frame
axis with masks:

    X_t (B×T), X_a (B×S) --LPIA (2)-(8)--> paths over T (text queries) and S (audio queries)
    --unimodal gates + merge (9)-(12)--> F_t (B×T×d), F_a (B×S×d)
    --masked mean over frames--> f_t, f_a (B×d)          (the lengths may differ)
    --multimodal gate (13)-(14)--> f --classifier (15)--> z;  students on f_t, f_a

Cross-attention handles the unequal lengths (text queries of length T read audio keys
of length S). A modality given as one vector per utterance is a sequence of one frame,
so text frames + utterance-level audio (IEMOCAP here) works as is. Padding frames never
matter (masked keys, masked pooling; tested). No dialogue context: each utterance alone.
Outputs are shaped B×1×C (one "utterance per dialogue") so the trainer and the loss are
the utterance-level ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ...errors import ConfigError, DataError
from ...registry import register_model
from ..base import ModelOutput, masked_mean, sinusoidal_positions
from .model import LPGNet, LPGNetConfig


@dataclass
class FrameLPGNetConfig(LPGNetConfig):
    name: Literal["lpgnet_frame"] = "lpgnet_frame"  # type: ignore[assignment]
    max_frames: int = 512  # frames (tokens) kept per utterance and modality

    @property
    def frame_level(self) -> bool:
        return True

    def validate(self, where: str = "model") -> None:
        super().validate(where)
        if self.max_frames < 1:
            raise ConfigError(f"{where}.max_frames: expected a positive integer, got {self.max_frames}")
        if self.fusion != "dual_gated" or self.causal or self.speakers.embedding != "none":
            raise ConfigError(
                f"{where}: the frame-level model supports fusion dual_gated, no causal mode and no speakers"
            )


@register_model("lpgnet_frame", FrameLPGNetConfig)
class FrameLPGNet(LPGNet):
    """LPGNet's modules (built by LPGNet), run along frames. ``forward(text, audio, mask,
    text_mask=, audio_mask=)``: text B×T×d_text and audio B×S×d_audio with their frame
    masks; ``mask`` is B×1 (one utterance per row)."""

    def forward(
        self,
        text: Tensor | None,
        audio: Tensor | None,
        mask: Tensor,
        need_weights: bool = False,
        speakers: Tensor | None = None,
        text_mask: Tensor | None = None,
        audio_mask: Tensor | None = None,
    ) -> ModelOutput:
        given = {"text": (text, text_mask), "audio": (audio, audio_mask)}
        inputs, masks = {}, {}
        for m in self.modalities:
            x, fm = given[m]
            if x is None or x.dim() != 3 or x.shape[-1] != self.inputs.dims[m]:
                got = None if x is None else tuple(x.shape)
                raise DataError(f"{m} frames: expected a batch×frames×{self.inputs.dims[m]} tensor, got {got}")
            fm = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device) if fm is None else fm.bool()
            x, fm = x[:, : self.config.max_frames], fm[:, : self.config.max_frames]
            inputs[m] = self.inputs.norm[m](x) * fm.unsqueeze(-1).to(x.dtype)
            masks[m] = fm
        positions = None
        if self.config.position == "sinusoidal":
            positions = {m: sinusoidal_positions(x.shape[1], self.config.d_model, x.device) for m, x in inputs.items()}
        outputs, weights = self.lpia(inputs, masks, positions, need_weights=need_weights)  # (2)-(8) along frames
        per_frame = self.fusion.per_modality(outputs)  # (9)-(12) at every frame of each modality
        pooled = {m: masked_mean(f, masks[m]).unsqueeze(1) for m, f in per_frame.items()}  # B×1×d each
        fused, alpha = self.fusion.combine(pooled)  # (13)-(14) on the utterance vectors
        logits = self.classifier(fused)  # (15): B×1×C
        students = self.students(pooled) if self.training else {}
        return ModelOutput(
            logits=logits,
            student_logits=students,
            alpha=alpha.mean(-1),
            alpha_full=alpha,
            attention=weights if need_weights else None,
            modalities=self.modalities,
        )
