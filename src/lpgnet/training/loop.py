"""Training with self-distillation, validation-based model selection, one test pass.

The protocol every figure in this project follows:

1. the validation split comes from the training dialogues only (carved by dialogue with
   ``data.valid_seed``, or given by the data), never from the test split;
2. the checkpoint kept is the epoch with the best ``train.select_metric`` on validation
   (optionally stopping early after ``train.patience`` epochs without improvement);
3. the test split is scored once, with that checkpoint, after training.

The run directory is written through :class:`lpgnet.runs.RunDir` (``metrics.json``
last: its presence marks a finished run), with two plots.
"""

from __future__ import annotations

import copy
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from ..config import DEFAULT_PRESET, RunConfig, load_config
from ..data.batching import (
    TensorDialogue,
    batch_indices,
    collate,
    item_lengths,
    slot_bound,
)
from ..data.conversation import IGNORE, DataBundle, Dialogue, feature_stats
from ..models.lpgnet.distillation import self_distillation_loss
from ..registry import build_model
from ..runs import RunDir
from . import distributed
from .crossval import crossval_folds
from .distributed import SINGLE, Context, wrap
from .metrics import format_metrics
from .plots import plot_confusion, plot_curves
from .scoring import missing_modality_splits, score, score_ensemble, score_pooled
from .setup import (
    apply_threads,
    as_items,
    device_of,
    ensure_splits,
    load_data,
    resolve_device,
    resolve_model_config,
    resolve_speakers,
)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def balanced_class_weights(labels: list[int] | torch.Tensor, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights n / (C · count_c), as scikit-learn's 'balanced'."""
    y = torch.as_tensor(labels).flatten()
    y = y[y != IGNORE]
    counts = torch.bincount(y, minlength=num_classes).float()
    return torch.where(counts > 0, y.numel() / (num_classes * counts.clamp(min=1)), torch.zeros_like(counts))


def frame_stats(items: list) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per-feature mean and std over every training frame (FeatureNorm for frame models)."""
    out = {}
    for m in ("text", "audio"):
        x = torch.cat([getattr(it, m) for it in items]).double()
        out[m] = (x.mean(0).float(), x.std(0, unbiased=False).float())
    return out


def drop_modalities(
    text: torch.Tensor, audio: torch.Tensor, p: float, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Modality dropout: each utterance loses text, audio, or neither (never both), each
    with probability ``p``; a lost modality is NaN, which the models read as missing."""
    if p <= 0:
        return text, audio
    b, n = text.shape[:2]
    u = torch.from_numpy(rng.random((b, n))).to(text.device)
    text, audio = text.clone(), audio.clone()
    text[u < p] = float("nan")
    audio[(u >= p) & (u < 2 * p)] = float("nan")
    return text, audio


def train_epoch(
    model: torch.nn.Module,
    items: list[TensorDialogue],
    cfg: RunConfig,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    class_weights: torch.Tensor | None = None,
    desc: str = "epoch",
    after_step: Callable[[], None] | None = None,
    ctx: Context = SINGLE,
    forward: Callable[..., Any] | None = None,
) -> dict[str, float]:
    """One pass over the training dialogues in length-bucketed batches (eq. 22 loss);
    returns each loss term averaged over labelled utterances. ``after_step`` runs after
    every optimiser step (e.g. a weight average's update). Under torchrun (``ctx``) each
    process trains its share of every batch through ``forward`` (DDP around ``model``)
    and the shares' losses add up to the batch's (``lpgnet.training.distributed``)."""
    model.train()
    forward = forward or model
    device = device_of(model)
    sums: dict[str, float] = {}
    count = 0
    batches = batch_indices(
        item_lengths(items),
        cfg.train.batch_size,
        rng,
        cfg.train.bucket_by_length,
        max_slots=slot_bound(items, cfg.train.max_batch_utterances),
    )
    for idx in tqdm(batches, desc=desc, leave=False, disable=not cfg.train.progress or not ctx.main):
        mine, weight = ctx.share(idx)
        batch = collate([items[i] for i in mine]).to(device)
        text, audio = drop_modalities(batch.text, batch.audio, 0.0 if batch.extras else cfg.train.modality_dropout, rng)
        out = forward(text, audio, batch.mask, **batch.model_kwargs(model.config))
        total_of = (lambda d, w=weight: ctx.total_of(d * w)) if ctx.active else None
        loss, parts = self_distillation_loss(
            out.logits, out.student_logits, batch.labels, cfg.loss, class_weights, batch.mask, out.present, total_of
        )
        optimizer.zero_grad(set_to_none=True)
        (loss * (weight * ctx.world)).backward()  # DDP averages the shares' gradients: undo its 1 / world
        if cfg.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        optimizer.step()
        if after_step is not None:
            after_step()
        n = sum(int((items[i].labels != IGNORE).sum()) for i in idx)  # the whole batch's: every process has it
        count += n
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v * weight * n
    if ctx.active:  # each process holds its shares' part of every term
        keys = sorted(sums)
        summed = ctx.total_of(torch.tensor([sums[k] for k in keys], dtype=torch.float64)).tolist()
        sums = dict(zip(keys, summed))
    return {k: v / max(count, 1) for k, v in sums.items()}


def budget(cfg: RunConfig) -> str:
    """What is about to be trained, said before any data is built (a config that sets no
    model size trains the paper's full size: better known before the first epoch)."""
    width = getattr(cfg.model, "d_model", None)
    stop = f", stopping {cfg.train.patience} epochs after the best" if cfg.train.patience else ""
    rule = "cross-validated over the training groups" if cfg.train.selection == "crossval" else "on validation"
    return (
        f"{cfg.model.name}{f' d_model {width}' if width else ''}: up to {cfg.train.epochs} epochs{stop}, "
        f"batch {cfg.train.batch_size}, epoch chosen {rule}; torch threads {torch.get_num_threads()} "
        "(train.threads to change)"
    )


@dataclass
class Fit:
    """A model being trained on a set of dialogues, with all an epoch needs."""

    cfg: RunConfig
    model: torch.nn.Module
    items: list
    optimizer: torch.optim.Optimizer
    rng: np.random.Generator
    class_weights: torch.Tensor | None
    average: AveragedModel | None = None  # an exponential moving average of the weights (train.ema)
    ctx: Context = SINGLE  # the processes sharing each batch (torchrun)
    forward: Callable[..., Any] | None = None  # DDP around the model under torchrun

    def epoch(self, desc: str = "epoch") -> dict[str, float]:
        update = None if self.average is None else lambda: self.average.update_parameters(self.model)
        return train_epoch(
            self.model, self.items, self.cfg, self.optimizer, self.rng, self.class_weights, desc, update,
            self.ctx, self.forward,
        )  # fmt: skip

    @property
    def scored(self) -> torch.nn.Module:
        """The model that is scored and kept: the weight average when there is one."""
        return self.model if self.average is None else self.average.module


def start_fit(
    cfg: RunConfig,
    dialogues: list[Dialogue],
    num_classes: int,
    dev: torch.device,
    stream: int | None = None,
    ctx: Context = SINGLE,
) -> Fit:
    """A fresh model (seeded by ``train.seed``), standardised with ``dialogues``' statistics,
    its optimiser and its batch-order generator (``stream`` separates the generators of
    models trained side by side with one seed, e.g. cross-validation folds)."""
    set_seed(cfg.train.seed)
    model = build_model(cfg.model).to(dev)
    items = as_items(cfg, dialogues)
    if cfg.data.standardize:
        model.inputs.set_stats(frame_stats(items) if cfg.model.frame_level else feature_stats(dialogues))
    weights = None
    if cfg.train.class_weights == "balanced":
        weights = balanced_class_weights(np.concatenate([d.labels for d in dialogues]), num_classes).to(dev)
    opt_cls = torch.optim.AdamW if cfg.train.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    rng = np.random.default_rng(cfg.train.seed if stream is None else [cfg.train.seed, stream])
    average = None
    if cfg.train.ema:
        average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.train.ema), use_buffers=True)
    return Fit(cfg, model, items, optimizer, rng, weights, average, ctx, wrap(model, ctx))


def epoch_row(epoch: int, losses: dict[str, float], valid: dict[str, Any], seconds: float) -> dict[str, float]:
    """One log.csv row: the epoch's training losses and the selection split's scores."""
    row = {"epoch": epoch, **{f"train_{k}": v for k, v in losses.items()}}
    row.update({f"valid_{k}": valid[k] for k in ("loss", "accuracy", "weighted_f1", "macro_f1", "uar")})
    row["seconds"] = seconds
    return row


def select_by_crossval(
    cfg: RunConfig, bundle: DataBundle, dev: torch.device, say: Callable[[str], None], ctx: Context = SINGLE
) -> tuple[list[dict[str, float]], dict[str, Any], int, list[dict[str, torch.Tensor]]]:
    """The epoch count, chosen with every training dialogue and no test data: one model
    per left-out group (``crossval_folds``), trained in lockstep; after each epoch the
    left-out predictions of all folds are pooled and scored, and training stops once that
    score has not improved for ``train.patience`` epochs (or at ``train.epochs``).
    Returns the log rows, the pooled out-of-fold scores at the chosen epoch (the run's
    ``valid`` figures), the chosen epoch and the fold models' weights at that epoch."""
    names = bundle.label_names
    folds = crossval_folds(bundle.splits["train"], cfg.train.cv_folds, cfg.data.valid_seed or 0)
    fits = [start_fit(cfg, inner, len(names), dev, stream=k + 1, ctx=ctx) for k, (_, inner, _) in enumerate(folds)]
    held = [as_items(cfg, out) for _, _, out in folds]
    say(
        f"{cfg.model.name}: epochs chosen by leave-one-group-out over {len(folds)} groups of the training "
        f"dialogues ({', '.join(name for name, _, _ in folds)})"
    )

    def step(epoch: int) -> tuple[dict[str, float], dict[str, Any]]:
        losses = [fit.epoch(f"epoch {epoch}/{cfg.train.epochs} fold {k + 1}") for k, fit in enumerate(fits)]
        pooled = score_pooled([(fit.scored, items) for fit, items in zip(fits, held)], names, ctx)
        return {k: float(np.mean([part[k] for part in losses])) for k in losses[0]}, pooled

    def keep(pooled: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, torch.Tensor]]]:
        return pooled, [weights_of(fit.scored) for fit in fits]

    history, (pooled, states), chosen = run_epochs(cfg, step, keep, ("left-out", "over the left-out groups"), say)
    return history, pooled, chosen, states


def weights_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``model``'s weights as they are now (training goes on changing them)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fold_model_scores(
    model: torch.nn.Module,
    states: list[dict[str, torch.Tensor]],
    items: list[TensorDialogue],
    names: list[str],
    ctx: Context = SINGLE,
) -> dict[str, Any]:
    """A cross-validated run's fold models (``states``, in ``model``'s architecture) on
    ``items``: each alone and their averaged probabilities. Never used to choose: it shows
    whether the final retrain on all training dialogues lands where the fold models did
    (a chosen epoch count that transfers badly) and what averaging them would give."""
    members = []
    for state in states:
        member = copy.deepcopy(model)
        member.load_state_dict(state)
        members.append(member.eval())
    alone, ensemble = score_ensemble(members, items, names, ctx=ctx)
    return {"members": {k: [a[k] for a in alone] for k in ("accuracy", "weighted_f1")}, "ensemble": ensemble}


def run_epochs(
    cfg: RunConfig,
    step: Callable[[int], tuple[dict[str, float], dict[str, Any]]],
    keep: Callable[[dict[str, Any]], Any],
    where: tuple[str, str],
    say: Callable[[str], None],
) -> tuple[list[dict[str, float]], Any, int]:
    """Epochs until ``train.epochs``, or until ``train.patience`` epochs have passed
    without a better ``train.select_metric``. ``step(epoch)`` trains one epoch and returns
    its losses and selection scores; ``keep(scores)`` is what is kept of the best epoch.
    Returns the log rows, what was kept and the best epoch."""
    history: list[dict[str, float]] = []
    best: tuple[float, int, Any] | None = None
    since_best = 0
    for epoch in range(1, cfg.train.epochs + 1):
        t0 = time.perf_counter()
        losses, scores = step(epoch)
        history.append(epoch_row(epoch, losses, scores, time.perf_counter() - t0))
        current = scores[cfg.train.select_metric]
        improved = best is None or current > best[0]
        if improved:
            best, since_best = (current, epoch, keep(scores)), 0
        else:
            since_best += 1
        say(
            f"epoch {epoch:3d}  loss {losses['total']:.4f}  {where[0]} {format_metrics(scores)}"
            f"  {history[-1]['seconds']:.1f}s{'  *' if improved else ''}"
        )
        if cfg.train.patience and since_best >= cfg.train.patience:
            say(f"early stop: no {cfg.train.select_metric} improvement {where[1]} for {cfg.train.patience} epochs")
            break
    assert best is not None
    return history, best[2], best[1]


@dataclass
class TrainResult:
    model: torch.nn.Module
    metrics: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    out_dir: Path | None = None


def train(
    cfg: RunConfig | str | Path | None = None,
    out_dir: str | Path | None = None,
    overwrite: bool = False,
    data: DataBundle | None = None,
    log: Callable[[str], None] | None = None,
    device: str | torch.device | None = None,
) -> TrainResult:
    """Train the configured model; write the run directory if ``out_dir`` is given.

    ``cfg`` is a RunConfig, a YAML path or preset name, or None for the ``synthetic``
    preset (as ``lpgnet train`` without ``--config``). ``data`` replaces the
    dataset the config names (for callers that build their own DataBundle).
    ``device`` (``cpu``, ``cuda``, ``auto``; default CPU) is where training runs; the
    returned model and the saved weights are on the CPU either way.
    """
    ctx = distributed.from_env()  # several processes under torchrun, else one
    dev = ctx.device or resolve_device(device)
    if not isinstance(cfg, RunConfig):
        cfg = load_config(cfg if cfg is not None else DEFAULT_PRESET)
    cfg = copy.deepcopy(cfg).validate()
    run_dir = RunDir(out_dir).check_writable(overwrite) if out_dir is not None and ctx.main else None
    say = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
    if not ctx.main:
        say = lambda msg: None  # noqa: E731 - rank 0 alone reports
    apply_threads(cfg)
    say(budget(cfg) + (f"; {ctx.world} processes share each batch" if ctx.active else ""))

    if data is not None:
        bundle = copy.copy(data)  # a caller's bundle without a validation split gets one carved
        bundle.splits = dict(data.splits)
        ensure_splits(bundle, cfg)
    else:
        with distributed.main_first(ctx):  # rank 0 computes uncached text features; the others read them
            bundle = load_data(cfg, say)
    resolve_model_config(cfg, bundle)
    resolve_speakers(cfg, bundle)
    cfg.validate()
    names = bundle.label_names
    test_items = as_items(cfg, bundle.splits["test"])
    start = time.perf_counter()
    if cfg.train.selection == "crossval":
        # the epoch count from leave-one-group-out inside the training dialogues, then
        # one model trained on all of them for that many epochs
        history, valid, chosen, fold_states = select_by_crossval(cfg, bundle, dev, say, ctx)
        fit = start_fit(cfg, bundle.splits["train"], len(names), dev, ctx=ctx)
        params = fit.model.num_parameters()
        say(f"{cfg.model.name}: {params:,} parameters; final model on all {len(fit.items)} training dialogues")
        for epoch in range(1, chosen + 1):
            fit.epoch(f"final epoch {epoch}/{chosen}")
        model = fit.scored.eval()
        best_epoch = chosen
    else:
        fit = start_fit(cfg, bundle.splits["train"], len(names), dev, ctx=ctx)
        model, valid_items = fit.model, as_items(cfg, bundle.splits["valid"])
        params = model.num_parameters()
        say(
            f"{cfg.model.name}: {params:,} parameters; {bundle.source}: train {len(fit.items)} dialogues, "
            f"valid {len(valid_items)} dialogues, test {len(test_items)} dialogues"
        )

        def step(epoch: int) -> tuple[dict[str, float], dict[str, Any]]:
            return fit.epoch(f"epoch {epoch}/{cfg.train.epochs}"), score(fit.scored, valid_items, names, ctx=ctx)

        history, kept, best_epoch = run_epochs(cfg, step, lambda _: weights_of(fit.scored), ("valid", "on valid"), say)
        model.load_state_dict(kept)
        model.eval()
        valid = score(model, valid_items, names, ctx=ctx)
    metrics = {
        "valid": valid,
        "test": score(model, test_items, names, ctx=ctx),  # the run's test score; nothing reads it to choose
        **{
            k: score(model, test_items, names, without=k.removeprefix("test_without_"), ctx=ctx)
            for k in missing_modality_splits(cfg)
        },
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "select_metric": cfg.train.select_metric,
        "selection": cfg.train.selection,
        "seed": cfg.train.seed,
        "model": cfg.model.name,
        "params": params,
        "params_inference": model.num_parameters(inference_only=True),
        "train_seconds": time.perf_counter() - start,
        "data": bundle.source,
        "data_sha256": bundle.fingerprint,
        "device": str(dev) if dev.type == "cpu" else f"{dev} ({torch.cuda.get_device_name(dev)})",
        "torch": torch.__version__,
        **(
            {"fold_models_test": fold_model_scores(model, fold_states, test_items, names, ctx)}
            if cfg.train.selection == "crossval"
            else {}
        ),
        **({"processes": ctx.world} if ctx.active else {}),
        **({"text_encoder_dir": bundle.text_encoder_dir} if bundle.text_encoder_dir else {}),
    }
    model.cpu()
    where = "mean over the left-out groups" if cfg.train.selection == "crossval" else "on valid"
    say(f"best epoch {best_epoch} ({cfg.train.select_metric} {where})")
    say(f"test  {format_metrics(metrics['test'])}")
    if run_dir is not None:
        run_dir.write(cfg, model, metrics, history, figures=lambda path: _figures(path, history, metrics))
        say(f"run written to {run_dir.path}")
    return TrainResult(model=model, metrics=metrics, history=history, out_dir=run_dir.path if run_dir else None)


def _figures(path: Path, history: list[dict[str, float]], metrics: dict[str, Any]) -> None:
    plot_curves(history, path / "training_curves.png", metrics["best_epoch"], metrics["select_metric"])
    plot_confusion(metrics["test"], path / "confusion_matrix.png")
