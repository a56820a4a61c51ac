"""Training with self-distillation, validation-based model selection, one test pass.

The protocol every figure in this project follows:

1. the validation split comes from the training dialogues only (carved by dialogue with
   ``data.valid_seed``, or given by the data), never from the test split;
2. the checkpoint kept is the epoch with the best ``train.select_metric`` on validation
   (optionally stopping early after ``train.patience`` epochs without improvement);
3. the test split is scored once, with that checkpoint, after training.

A run directory holds ``config.yaml`` (the fully resolved config), ``model.safetensors``,
``log.csv`` (one row per epoch), ``metrics.json`` (written last: its presence marks a
finished run) and two plots.
"""

from __future__ import annotations

import copy
import csv
import io
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from .checkpoint import save_pretrained
from .config import DEFAULT_PRESET, RunConfig, dump_config, load_config
from .data.batching import TensorDialogue, batch_indices, collate, frame_items, item_lengths, tensorize
from .data.conversation import DataBundle, carve_validation
from .data.jsonl import load_jsonl_bundle
from .data.synthetic import make_synthetic
from .distillation import IGNORE, balanced_class_weights, self_distillation_loss
from .errors import ConfigError, DataError, RunDirError
from .features.text import text_features, token_states
from .files import write_json, write_text
from .metrics import compute_metrics, format_metrics
from .registry import build_model

FINISHED_MARKER = "metrics.json"


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The device to train on: ``None`` = CPU; ``"auto"`` = CUDA when available. Not part
    of the config, so a run trained on a GPU answers the same experiment as a CPU one
    (its metrics.json records the device; GPU numerics differ slightly)."""
    if device is None:
        return torch.device("cpu")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device {device!r}: expected cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: this PyTorch ({torch.__version__}) sees no CUDA GPU; use cpu or auto")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device {device!r}: expected cpu, cuda, cuda:N or auto")
    return dev


def _device_of(model: torch.nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def ensure_splits(bundle: DataBundle, cfg: RunConfig) -> None:
    """Carve the validation split out of the training dialogues when the data has none;
    refuse an empty validation or test split."""
    if not bundle.splits.get("valid"):
        seed = cfg.train.seed if cfg.data.valid_seed is None else cfg.data.valid_seed
        # Same dialogues, regrouped: no need to validate them again.
        bundle.splits["train"], bundle.splits["valid"] = carve_validation(
            bundle.splits["train"], cfg.data.valid_fraction, seed
        )
    for split in ("valid", "test"):
        if not bundle.splits.get(split):
            raise DataError(f"{bundle.source}: the {split} split is empty")


def load_data(cfg: RunConfig, log: Callable[[str], None] | None = None) -> DataBundle:
    """The dialogues a config names, with a validation split carved if none is given."""
    d = cfg.data
    if d.source == "jsonl":
        bundle = load_jsonl_bundle(
            d.path, d.splits, d.protocol, d.label_field, d.labels,  # type: ignore[arg-type]
            {"text": d.text_feature, "audio": d.audio_feature}, d.unlabelled,
            read_text=d.text_encoder is not None, group_field=d.group_field,
        )
    else:
        bundle = make_synthetic(d.synthetic)
    ensure_splits(bundle, cfg)
    if d.text_encoder is not None:  # after the carve: fine-tuning may use the training dialogues only
        say = log or (lambda m: print(m, file=sys.stderr))
        entry = text_features(bundle, d.text_encoder, d.path, log=say)  # type: ignore[arg-type]
        bundle.validate()
        if d.text_frames:
            dialogues = [x for s in bundle.splits.values() for x in s]
            seqs = token_states([t for x in dialogues for t in x.texts], d.text_encoder, 512, entry.parent.parent, log=say)
            for x in dialogues:
                x.text_frames, seqs = seqs[: len(x)], seqs[len(x) :]
    return bundle


def resolve_model_config(cfg: RunConfig, bundle: DataBundle) -> None:
    """Fill the model's input sizes and class count from the data; refuse a mismatch."""
    model = cfg.model
    for m in model.modalities:
        if bundle.dims[m] == 0:
            raise DataError(f"{bundle.source}: the model uses {m} features but the data has none (set data.{m}_feature)")
    wanted = {"num_classes": len(bundle.label_names), **{f"d_{m}": bundle.dims[m] for m in model.modalities}}
    for key, value in wanted.items():
        current = getattr(model, key)
        if current is None:
            setattr(model, key, value)
        elif current != value:
            what = "classes" if key == "num_classes" else f"{key[2:]} feature dimension"
            raise DataError(f"{bundle.source}: the data has {what} {value}, but config model.{key} is {current}")


def resolve_speakers(cfg: RunConfig, bundle: DataBundle) -> None:
    """For a model with speaker embeddings: check the data names its speakers, fill the
    identity vocabulary from the training split, and bound the per-dialogue parties."""
    spk = getattr(cfg.model, "speakers", None)
    if spk is None or spk.embedding == "none":
        return
    for split, dialogues in bundle.splits.items():
        for d in dialogues:
            if not d.speakers or not all(d.speakers):
                raise DataError(f"{bundle.source}: dialogue {d.dialog_id!r} ({split}): field 'speaker' is missing, "
                                f"but model.speakers.embedding is {spk.embedding!r}")
            if spk.embedding == "party" and len(set(d.speakers)) > spk.max_speakers:
                raise DataError(f"{bundle.source}: dialogue {d.dialog_id!r} ({split}) has {len(set(d.speakers))} "
                                f"speakers; model.speakers.max_speakers is {spk.max_speakers}")
    if spk.embedding == "identity" and spk.vocab is None:
        spk.vocab = sorted({s for d in bundle.splits["train"] for s in d.speakers or []})


def speaker_vocab(model_cfg: Any) -> list[str] | None:
    """The name -> index vocabulary a model's speaker embedding needs (identity mode only)."""
    spk = getattr(model_cfg, "speakers", None)
    return spk.vocab if spk is not None and spk.embedding == "identity" else None


@torch.no_grad()
def predict_logits(
    model: torch.nn.Module, items: list[TensorDialogue], batch_size: int = 64, without: str | None = None
) -> list[torch.Tensor]:
    """Eval-mode logits, one N_i×C tensor per dialogue, in the input order; ``without``
    names a modality to withhold (a missing-modality test)."""
    model.eval()
    device = _device_of(model)
    out: list[torch.Tensor | None] = [None] * len(items)
    for idx in batch_indices(item_lengths(items), batch_size, rng=None):
        batch = collate([items[i] for i in idx]).to(device)
        text = None if without == "text" else batch.text
        audio = None if without == "audio" else batch.audio
        logits = model(text, audio, batch.mask, speakers=batch.speakers, **batch.extras).logits.cpu()
        for row, i in enumerate(idx):
            out[i] = logits[row, : len(items[i].labels)]
    return out  # type: ignore[return-value]


def score(
    model: torch.nn.Module, items: list[TensorDialogue], label_names: list[str], batch_size: int = 64,
    without: str | None = None,
) -> dict[str, Any]:
    """Metrics over the labelled utterances of ``items``, plus the mean task loss."""
    logits = torch.cat(predict_logits(model, items, batch_size, without))
    labels = torch.cat([it.labels for it in items])
    keep = labels != IGNORE
    metrics = compute_metrics(labels[keep].numpy(), logits[keep].argmax(-1).numpy(), label_names)
    metrics["loss"] = float(torch.nn.functional.cross_entropy(logits[keep], labels[keep]))
    return metrics


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
) -> dict[str, float]:
    """One pass over the training dialogues in length-bucketed batches (eq. 22 loss);
    returns each loss term averaged over labelled utterances."""
    model.train()
    device = _device_of(model)
    sums: dict[str, float] = {}
    count = 0
    batches = batch_indices(item_lengths(items), cfg.train.batch_size, rng, cfg.train.bucket_by_length)
    for idx in tqdm(batches, desc=desc, leave=False, disable=not cfg.train.progress):
        batch = collate([items[i] for i in idx]).to(device)
        text, audio = drop_modalities(batch.text, batch.audio, 0.0 if batch.extras else cfg.train.modality_dropout, rng)
        out = model(text, audio, batch.mask, speakers=batch.speakers, **batch.extras)
        loss, parts = self_distillation_loss(out.logits, out.student_logits, batch.labels, cfg.loss, class_weights,
                                             batch.mask, out.present)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        optimizer.step()
        n = int((batch.labels != IGNORE).sum())
        count += n
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + v * n
    return {k: v / max(count, 1) for k, v in sums.items()}


@dataclass
class TrainResult:
    model: torch.nn.Module
    metrics: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)
    out_dir: Path | None = None


def check_out_dir(out_dir: str | Path | None, overwrite: bool) -> Path | None:
    if out_dir is None:
        return None
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"{out}: exists and is not a directory")
    if (out / FINISHED_MARKER).exists() and not overwrite:
        raise RunDirError(f"{out}: holds a finished run ({FINISHED_MARKER} exists); pass --overwrite to replace it")
    return out


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
    dev = resolve_device(device)
    if not isinstance(cfg, RunConfig):
        cfg = load_config(cfg if cfg is not None else DEFAULT_PRESET)
    cfg = copy.deepcopy(cfg).validate()
    out = check_out_dir(out_dir, overwrite)
    say = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)

    if data is not None:
        bundle = copy.copy(data)  # a caller's bundle without a validation split gets one carved
        bundle.splits = dict(data.splits)
        ensure_splits(bundle, cfg)
    else:
        bundle = load_data(cfg, say)
    resolve_model_config(cfg, bundle)
    resolve_speakers(cfg, bundle)
    cfg.validate()
    set_seed(cfg.train.seed)
    model = build_model(cfg.model).to(dev)
    frame = cfg.model.name == "lpgnet_frame"
    if frame:  # LPGNet (Frame): one item per labelled utterance, its frame sequences
        items = {split: frame_items(bundle.splits[split], cfg.model.max_frames) for split in ("train", "valid", "test")}
    else:
        vocab = speaker_vocab(cfg.model)
        items = {split: tensorize(bundle.splits[split], vocab) for split in ("train", "valid", "test")}
    if cfg.data.standardize:
        model.inputs.set_stats(frame_stats(items["train"]) if frame else bundle.input_stats("train"))
    names = bundle.label_names
    weights = None
    if cfg.train.class_weights == "balanced":
        weights = balanced_class_weights(bundle.labels("train"), len(names)).to(dev)
    opt_cls = torch.optim.AdamW if cfg.train.optimizer == "adamw" else torch.optim.Adam
    optimizer = opt_cls(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    rng = np.random.default_rng(cfg.train.seed)

    params = model.num_parameters()
    say(
        f"{cfg.model.name}: {params:,} parameters; {bundle.source}: "
        + ", ".join(f"{s} {len(items[s])} dialogues" for s in items)
    )

    history: list[dict[str, float]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    since_best = 0
    start = time.perf_counter()
    for epoch in range(1, cfg.train.epochs + 1):
        t0 = time.perf_counter()
        losses = train_epoch(model, items["train"], cfg, optimizer, rng, weights, desc=f"epoch {epoch}/{cfg.train.epochs}")
        valid = score(model, items["valid"], names)
        row = {"epoch": epoch, **{f"train_{k}": v for k, v in losses.items()}}
        row.update({f"valid_{k}": valid[k] for k in ("loss", "accuracy", "weighted_f1", "macro_f1", "uar")})
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        current = valid[cfg.train.select_metric]
        improved = best is None or current > best[0]
        if improved:
            best = (current, epoch, {k: v.detach().clone() for k, v in model.state_dict().items()})
            since_best = 0
        else:
            since_best += 1
        say(
            f"epoch {epoch:3d}  loss {row['train_total']:.4f}  valid {format_metrics(valid)}"
            f"  {row['seconds']:.1f}s{'  *' if improved else ''}"
        )
        if cfg.train.patience and since_best >= cfg.train.patience:
            say(f"early stop: no {cfg.train.select_metric} improvement on valid for {cfg.train.patience} epochs")
            break
    assert best is not None
    model.load_state_dict(best[2])
    model.eval()
    metrics = {
        "valid": score(model, items["valid"], names),
        "test": score(model, items["test"], names),  # the only time the test split is scored
        **({f"test_without_{m}": score(model, items["test"], names, without=m) for m in cfg.model.modalities}
           if len(cfg.model.modalities) > 1 and not frame else {}),
        "best_epoch": best[1],
        "epochs_run": len(history),
        "select_metric": cfg.train.select_metric,
        "seed": cfg.train.seed,
        "model": cfg.model.name,
        "params": params,
        "params_inference": model.num_parameters(inference_only=True),
        "train_seconds": time.perf_counter() - start,
        "data": bundle.source,
        "data_sha256": bundle.fingerprint,
        "device": str(dev) if dev.type == "cpu" else f"{dev} ({torch.cuda.get_device_name(dev)})",
        **({"text_encoder_dir": bundle.text_encoder_dir} if bundle.text_encoder_dir else {}),
    }
    model.cpu()
    say(f"best epoch {best[1]} ({cfg.train.select_metric} on valid)")
    say(f"test  {format_metrics(metrics['test'])}")
    if out is not None:
        write_run(out, cfg, model, metrics, history)
        say(f"run written to {out}")
    return TrainResult(model=model, metrics=metrics, history=history, out_dir=out)


def write_run(
    out: Path, cfg: RunConfig, model: torch.nn.Module, metrics: dict[str, Any], history: list[dict[str, float]]
) -> None:
    """Write the run directory. Nothing is written before training has finished; a run
    being replaced (--overwrite) first loses its finished marker, so a crash part-way
    never leaves a directory that looks finished but mixes old and new files."""
    from .plots import plot_confusion, plot_curves

    out.mkdir(parents=True, exist_ok=True)
    (out / FINISHED_MARKER).unlink(missing_ok=True)
    write_text(out / "config.yaml", dump_config(cfg))
    save_pretrained(model, out)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    write_text(out / "log.csv", buf.getvalue())
    plot_curves(history, out / "training_curves.png", metrics["best_epoch"], metrics["select_metric"])
    plot_confusion(metrics["test"], out / "confusion_matrix.png")
    write_json(out / FINISHED_MARKER, metrics)  # last: marks the run finished
