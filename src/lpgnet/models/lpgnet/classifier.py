"""§3.5 Emotion classifier and the §3.6 student heads, SPEC equations (15), (16), (18).

The teacher head reads the fused representation F; one student head per modality reads
that modality's F_m. Students exist only to shape training through the self-distillation
loss (:mod:`lpgnet.models.lpgnet.distillation`); prediction uses the teacher's logits alone.
"""

from __future__ import annotations

from torch import Tensor, nn


class EmotionClassifier(nn.Module):
    """(15) z = W_c F + b_c. Softmax (16) and argmax are applied by the caller."""

    def __init__(self, d_model: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(d_model, num_classes)

    def forward(self, fused: Tensor) -> Tensor:
        return self.fc(fused)


class StudentHeads(nn.Module):
    """(18) z_m = W_m F_m + b_m for each modality m (training only).

    ``dropout`` not None gives SDT's form, W_m Dropout(ReLU(F_m)) + b_m."""

    def __init__(
        self, d_model: int, num_classes: int, modalities: tuple[str, ...], dropout: float | None = None
    ) -> None:
        super().__init__()

        def head() -> nn.Module:
            fc = nn.Linear(d_model, num_classes)
            return fc if dropout is None else nn.Sequential(nn.ReLU(), nn.Dropout(dropout), fc)

        self.heads = nn.ModuleDict({m: head() for m in modalities})

    def forward(self, per_modality: dict[str, Tensor]) -> dict[str, Tensor]:
        return {m: head(per_modality[m]) for m, head in self.heads.items()}
