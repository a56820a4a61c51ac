"""§3.6 Self-distillation loss, SPEC equations (17), (19)-(22).

    L = γ1·CE(z, y) + γ2·Σ_m CE(z_m, y) + γ3·Σ_m KL(P^τ ‖ P_m^τ)            (22)

with P^τ = softmax(z/τ) the teacher and P_m^τ = softmax(z_m/τ) the students (19). Every
term is a mean over *valid* utterances only: padding and unlabelled context utterances
carry a negative label (the data's ``IGNORE``, -100) and contribute nothing.

Open choices (SPEC), as config fields:
- ``detach_teacher`` (default true): the KL term trains the students towards the
  teacher, not the teacher towards the students -- the usual choice in distillation.
- ``kl_tau_squared`` (default true): multiply the KL term by τ² (Hinton et al.), which
  keeps its gradient scale independent of τ. At the paper's τ = 1 it changes nothing.
- ``kl_on`` (default ``labelled``): the KL term needs no label, so it could also run on
  the unlabelled context utterances of a dialogue (``all`` real utterances). The paper
  trains on labelled utterances only; ``all`` is a semi-supervised option.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ...config import LossConfig


def _kl_sum(teacher_logits: Tensor, student_logits: Tensor, valid: Tensor, tau: float) -> Tensor:
    """(21) summed over valid utterances: Σ KL(softmax(z/τ) ‖ softmax(z_m/τ))."""
    log_p = F.log_softmax(teacher_logits[valid] / tau, dim=-1)
    log_q = F.log_softmax(student_logits[valid] / tau, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum() + teacher_logits.sum() * 0.0


def masked_kl(teacher_logits: Tensor, student_logits: Tensor, valid: Tensor, tau: float) -> Tensor:
    """(21) mean over valid utterances of KL(softmax(z/τ) ‖ softmax(z_m/τ))."""
    return _kl_sum(teacher_logits, student_logits, valid, tau) / valid.sum().clamp(min=1)


def self_distillation_loss(
    logits: Tensor,
    student_logits: dict[str, Tensor],
    labels: Tensor,
    cfg: LossConfig,
    class_weights: Tensor | None = None,
    mask: Tensor | None = None,
    present: dict[str, Tensor] | None = None,
    total_of: Callable[[Tensor], Tensor] | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Total loss (22) and its parts (for logging). ``labels`` is B×N, negative (IGNORE) where unlabelled;
    ``mask`` (B×N, real utterances) is needed only for ``kl_on="all"``; ``present``
    (per modality, B×N) keeps each student's terms to the utterances that have its
    modality (modality dropout, missing inputs).

    Each term is a sum over its utterances divided by its denominator (the summed class
    weights of a cross-entropy, the count of a KL). ``total_of`` maps this batch's
    denominators to the ones to divide by: under data parallelism the sum over every
    process's share of the batch, which makes the shares' losses add up to the loss of
    the whole batch (``lpgnet.training.distributed``)."""
    valid = labels >= 0  # labelled utterances; padding and context carry the data's IGNORE (-100)
    if cfg.kl_on == "all" and mask is None:
        raise ValueError("kl_on='all' needs the utterance mask")
    kl_rows = mask.bool() if cfg.kl_on == "all" else valid
    num_classes = logits.shape[-1]
    zero = logits.sum() * 0.0

    def ce(z: Tensor, rows: Tensor = valid) -> tuple[Tensor, Tensor]:  # (17), (20): weighted sum, weight
        if not rows.any():
            return z.sum() * 0.0, zero.detach()
        y = labels[rows]
        summed = F.cross_entropy(z[rows].reshape(-1, num_classes), y, weight=class_weights, reduction="sum")
        weight = class_weights[y].sum() if class_weights is not None else y.new_tensor(y.numel(), dtype=z.dtype)
        return summed, weight.to(z.dtype)

    terms: list[tuple[str, float, Tensor, Tensor]] = [("task", cfg.gamma1, *ce(logits))]
    teacher = logits.detach() if cfg.detach_teacher else logits
    scale = cfg.tau**2 if cfg.kl_tau_squared else 1.0
    for m, z_m in student_logits.items():
        here = present[m] if present is not None and m in present else None
        rows = kl_rows if here is None else kl_rows & here
        terms.append((f"ce_{m}", cfg.gamma2, *ce(z_m, valid if here is None else valid & here)))
        kl = _kl_sum(teacher, z_m, rows, cfg.tau) * scale
        terms.append((f"kl_{m}", cfg.gamma3, kl, rows.sum().to(kl.dtype)))
    denominators = torch.stack([t[3] for t in terms])
    if total_of is not None:
        denominators = total_of(denominators)
    total = zero
    parts = {}
    for (name, gamma, summed, _), den in zip(terms, denominators):
        value = summed / den.clamp(min=1e-12) if float(den) > 0 else summed * 0.0
        total = total + gamma * value
        parts[name] = float(value.detach())
    parts["total"] = float(total.detach())
    return total, parts
