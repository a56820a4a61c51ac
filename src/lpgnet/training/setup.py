"""From a config to ready data: the dialogues it names, the validation carve, the model
sizes filled from the data, and the device. Shared by training, evaluation and experiments."""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch

from ..config import RunConfig
from ..data.batching import frame_items, speaker_indices, tensorize
from ..data.conversation import DataBundle, Dialogue, carve_validation
from ..data.jsonl import load_jsonl_bundle
from ..data.synthetic import make_synthetic
from ..data.windows import windowed
from ..errors import ConfigError, DataError
from ..features.text import text_features, token_states
from ..models.base import speaker_scheme


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


# train.threads "auto": one thread up to this width, torch's default above it. Measured by
# python -m lpgnet.benchmarks.threads (docs/TRAINING.md, "Threads").
ONE_THREAD_MAX_WIDTH = 256


def apply_threads(cfg: RunConfig) -> None:
    """Set torch's CPU thread count from ``train.threads`` (before any data is built: text
    features are computed with it too)."""
    threads = cfg.train.threads
    if threads == "auto":
        width = getattr(cfg.model, "d_model", None) or 0
        threads = 1 if width <= ONE_THREAD_MAX_WIDTH else None
    if threads:
        torch.set_num_threads(threads)


def device_of(model: torch.nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def ensure_splits(bundle: DataBundle, cfg: RunConfig) -> None:
    """Carve the validation split out of the training dialogues when the data has none;
    refuse an empty validation or test split. With cross-validated selection every
    training dialogue (a given validation split included) is used for training and
    selection, and there is no validation split."""
    if cfg.train.selection == "crossval":
        bundle.splits["train"] = bundle.splits["train"] + bundle.splits.get("valid", [])
        bundle.splits["valid"] = []
        if not bundle.splits.get("test"):
            raise DataError(f"{bundle.source}: the test split is empty")
        return
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
            d.path,
            d.splits,
            d.protocol,
            d.label_field,
            d.labels,  # type: ignore[arg-type]
            {"text": d.text_feature, "audio": d.audio_feature},
            d.unlabelled,
            read_text=d.text_encoder is not None,
            group_field=d.group_field,
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
            seqs = token_states(
                [t for x in dialogues for t in x.texts], d.text_encoder, 512, entry.parent.parent, log=say
            )
            for x in dialogues:
                x.text_frames, seqs = seqs[: len(x)], seqs[len(x) :]
    return bundle


def resolve_model_config(cfg: RunConfig, bundle: DataBundle) -> None:
    """Fill the model's input sizes and class count from the data; refuse a mismatch."""
    model = cfg.model
    for m in model.modalities:
        if bundle.dims[m] == 0:
            raise DataError(
                f"{bundle.source}: the model uses {m} features but the data has none (set data.{m}_feature)"
            )
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
                raise DataError(
                    f"{bundle.source}: dialogue {d.dialog_id!r} ({split}): field 'speaker' is missing, "
                    f"but model.speakers.embedding is {spk.embedding!r}"
                )
            if spk.embedding == "gender":
                try:
                    speaker_indices(d, "gender")
                except DataError as exc:
                    raise DataError(f"{bundle.source}: {exc}") from None
            if spk.embedding == "party" and len(set(d.speakers)) > spk.max_speakers:
                raise DataError(
                    f"{bundle.source}: dialogue {d.dialog_id!r} ({split}) has {len(set(d.speakers))} "
                    f"speakers; model.speakers.max_speakers is {spk.max_speakers}"
                )
    if spk.embedding == "identity" and spk.vocab is None:
        spk.vocab = sorted({s for d in bundle.splits["train"] for s in d.speakers or []})


def as_items(cfg: RunConfig, dialogues: list[Dialogue]) -> list:
    """Model-ready items: one per dialogue (a long one as its context windows, see
    ``lpgnet.data.windows``), or for LPGNet (Frame) one per labelled utterance with its
    frame sequences."""
    if cfg.model.frame_level:
        return frame_items(dialogues, cfg.model.max_frames)
    causal = bool(getattr(cfg.model, "causal", False))
    return tensorize(windowed(dialogues, cfg.data.context_window, causal), speaker_scheme(cfg.model))
