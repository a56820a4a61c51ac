"""Scoring a model on dialogues: eval-mode logits, then the metrics of the labelled utterances."""

from __future__ import annotations

from typing import Any

import torch

from ..config import RunConfig
from ..data.batching import TensorDialogue, batch_indices, collate, item_lengths, slot_bound
from ..data.conversation import IGNORE
from .distributed import SINGLE, Context
from .metrics import compute_metrics
from .setup import device_of

# Evaluation keeps no gradients: a larger bound on padded slots per batch than training's
# (64 windows of 512); IEMOCAP's and MELD's evaluation batches stay far under it.
EVAL_MAX_SLOTS = 64 * 512


def missing_modality_splits(cfg: RunConfig) -> list[str]:
    """The "test without a modality" scores a run of ``cfg`` carries: one per modality of a
    multimodal utterance-level model. LPGNet (Frame) has none -- its fusion needs both frame
    sequences, so it cannot be scored with one left out."""
    if len(cfg.model.modalities) < 2 or cfg.model.frame_level:
        return []
    return [f"test_without_{m}" for m in cfg.model.modalities]


def predict_logits(
    model: torch.nn.Module,
    items: list[TensorDialogue],
    batch_size: int = 64,
    without: str | None = None,
    ctx: Context = SINGLE,
) -> list[torch.Tensor]:
    """As :func:`_predict_logits`; under torchrun each process predicts a share of the
    dialogues and every process gets all of them back, in the input order."""
    if not ctx.active:
        return _predict_logits(model, items, batch_size, without)
    mine = _predict_logits(model, items[ctx.rank :: ctx.world], batch_size, without)
    shares = ctx.gather(mine)
    out: list[torch.Tensor] = [None] * len(items)  # type: ignore[list-item]
    for rank, share in enumerate(shares):
        out[rank :: ctx.world] = share
    return out


@torch.no_grad()
def _predict_logits(
    model: torch.nn.Module, items: list[TensorDialogue], batch_size: int = 64, without: str | None = None
) -> list[torch.Tensor]:
    """Eval-mode logits, one N_i×C tensor per dialogue, in the input order; ``without``
    names a modality to withhold (a missing-modality test). It is withheld from every
    utterance that has the other modality; an utterance that lacks the other one keeps it
    (nothing could be predicted otherwise), and :func:`score` leaves such utterances out."""
    model.eval()
    device = device_of(model)
    out: list[torch.Tensor | None] = [None] * len(items)
    for idx in batch_indices(item_lengths(items), batch_size, rng=None, max_slots=slot_bound(items, EVAL_MAX_SLOTS)):
        batch = collate([items[i] for i in idx]).to(device)
        inputs = {"text": batch.text, "audio": batch.audio}
        if without is not None:
            has_other = ~torch.isnan(inputs[_other(without)]).any(-1)
            withheld = inputs[without]
            inputs[without] = (
                None if bool(has_other.all()) else withheld.masked_fill(has_other.unsqueeze(-1), float("nan"))
            )
        text, audio = inputs["text"], inputs["audio"]
        logits = model(text, audio, batch.mask, **batch.model_kwargs(model.config)).logits.cpu()
        for row, i in enumerate(idx):
            out[i] = logits[row, : len(items[i].labels)]
    return out  # type: ignore[return-value]


def score_pooled(
    parts: list[tuple[torch.nn.Module, list[TensorDialogue]]], label_names: list[str], ctx: Context = SINGLE
) -> dict[str, Any]:
    """Metrics over several (model, dialogues) parts pooled: each model predicts its own
    dialogues (cross-validation: each fold's model its left-out group), scored as one set."""
    logits = torch.cat([torch.cat(predict_logits(model, items, ctx=ctx)) for model, items in parts])
    labels = torch.cat([it.labels for _, items in parts for it in items])
    return _metrics(logits, labels, label_names)


def score_ensemble(
    models: list[torch.nn.Module], items: list[TensorDialogue], label_names: list[str], ctx: Context = SINGLE
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each model's metrics, and those of their averaged class probabilities (the log of the
    mean of their softmaxes stands in for logits), from one prediction per model: e.g. a
    cross-validated run's fold models."""
    labels = torch.cat([it.labels for it in items])
    logits = [torch.cat(predict_logits(m, items, ctx=ctx)) for m in models]
    mean = torch.stack([x.softmax(-1) for x in logits]).mean(0).clamp_min(1e-12).log()
    return [_metrics(x, labels, label_names) for x in logits], _metrics(mean, labels, label_names)


def score(
    model: torch.nn.Module,
    items: list[TensorDialogue],
    label_names: list[str],
    batch_size: int = 64,
    without: str | None = None,
    ctx: Context = SINGLE,
) -> dict[str, Any]:
    """Metrics over the labelled utterances of ``items``, plus the mean task loss."""
    logits = torch.cat(predict_logits(model, items, batch_size, without, ctx))
    labels = torch.cat([it.labels for it in items])
    if without is not None:  # only the utterances the other modality alone can answer
        has_other = torch.cat([~torch.isnan(getattr(it, _other(without))).any(-1) for it in items])
        labels = labels.masked_fill(~has_other, IGNORE)
    return _metrics(logits, labels, label_names)


def _other(modality: str) -> str:
    return "audio" if modality == "text" else "text"


def _metrics(logits: torch.Tensor, labels: torch.Tensor, label_names: list[str]) -> dict[str, Any]:
    keep = labels != IGNORE
    metrics = compute_metrics(labels[keep].numpy(), logits[keep].argmax(-1).numpy(), label_names)
    metrics["loss"] = float(torch.nn.functional.cross_entropy(logits[keep], labels[keep]))
    return metrics
