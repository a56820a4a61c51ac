"""Run by tests/training/test_distributed.py under torchrun: the gradient of the first
batch of an LPGNet fit, computed by each process on its share through DDP; rank 0 saves
it (``python ddp_step.py OUT``; without torchrun: one process, the whole batch)."""

from __future__ import annotations

import sys

import numpy as np
import torch
from safetensors.torch import save_file

from lpgnet.config import load_config
from lpgnet.data.batching import batch_indices, collate, item_lengths
from lpgnet.data.synthetic import make_synthetic
from lpgnet.models.lpgnet.distillation import self_distillation_loss
from lpgnet.training import distributed
from lpgnet.training.loop import start_fit
from lpgnet.training.setup import resolve_model_config


def first_batch_gradient(ctx: distributed.Context) -> dict[str, torch.Tensor]:
    torch.set_num_threads(1)
    cfg = load_config(
        "synthetic",
        ["model.dropout=0", "model.d_model=32", "data.synthetic.train_dialogues=24", "data.synthetic.test_dialogues=4"],
    )
    bundle = make_synthetic(cfg.data.synthetic)
    resolve_model_config(cfg, bundle)
    fit = start_fit(cfg, bundle.splits["train"], len(bundle.label_names), torch.device("cpu"), ctx=ctx)
    idx = batch_indices(item_lengths(fit.items), 7, np.random.default_rng(0), True)[0]  # 7: uneven shares
    mine, weight = ctx.share(idx)
    batch = collate([fit.items[i] for i in mine])
    out = fit.forward(batch.text, batch.audio, batch.mask, **batch.model_kwargs(fit.model.config))
    total_of = (lambda d: ctx.total_of(d * weight)) if ctx.active else None
    loss, _ = self_distillation_loss(
        out.logits, out.student_logits, batch.labels, cfg.loss, fit.class_weights, batch.mask, out.present, total_of
    )
    (loss * weight * ctx.world).backward()
    grads = {n: p.grad.detach().clone() for n, p in fit.model.named_parameters() if p.grad is not None}
    grads.update({f"buffer.{n}": b.detach().clone() for n, b in fit.model.named_buffers() if "running" in n})
    return grads


if __name__ == "__main__":
    ctx = distributed.from_env()
    grads = first_batch_gradient(ctx)
    if ctx.main:
        save_file(grads, sys.argv[1])
