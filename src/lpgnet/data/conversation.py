"""Conversations in memory, checked once before any training starts.

A :class:`Dialogue` is one conversation: per-utterance text and audio feature vectors,
and integer labels with ``IGNORE`` for utterances that carry no label (they stay in the
dialogue as context but count in neither the loss nor the metrics). Speakers are kept
for reference and studies only; no model reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import DataError

SPLITS = ("train", "valid", "test")
IGNORE = -100  # label of padding and of unlabelled context utterances (PyTorch's ignore_index)
# Larger feature values are refused: float32 attention over them overflows to NaN
# (z-scored features are a few units; raw scales such as eGeMAPS reach 1e4).
MAX_FEATURE_ABS = 1e6


def unusable_value(values: list[float]) -> float | None:
    """The first value above MAX_FEATURE_ABS in magnitude (infinite ones included), or
    None; NaN passes, as it marks a missing vector."""
    return next((v for v in values if abs(v) > MAX_FEATURE_ABS), None)


@dataclass
class Dialogue:
    dialog_id: str
    text: np.ndarray  # N×d_text float32
    audio: np.ndarray  # N×d_audio float32
    labels: np.ndarray  # N int64, IGNORE where unlabelled
    speakers: list[str] | None = None
    utt_ids: list[str] | None = None
    texts: list[str] | None = None  # raw transcripts, when a text encoder is to embed them
    # Frame level (LPGNet (Frame)): per utterance a T×d token / frame sequence
    text_frames: list[np.ndarray] | None = None
    audio_frames: list[np.ndarray] | None = None
    # The dialogue's group (IEMOCAP: its session), from ``data.group_field`` when the data
    # has one: leave-one-group-out folds and cross-validated selection split by it.
    group: str | None = None

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class DataBundle:
    """Train / valid / test dialogues with one label set and fixed feature sizes."""

    splits: dict[str, list[Dialogue]]
    label_names: list[str]
    source: str  # shown in error messages: a file path or "synthetic data"
    dims: dict[str, int] = field(default_factory=dict)
    # SHA-256 of the files the dialogues came from (empty for generated data, whose
    # config says everything): lets a resumed experiment notice changed data.
    fingerprint: str = ""
    # The fine-tuned text encoder that embedded validation and test, when one was kept.
    text_encoder_dir: str | None = None

    def __post_init__(self) -> None:
        if not self.dims:
            first = next((d for s in self.splits.values() for d in s), None)
            if first is None:
                raise DataError(f"{self.source}: no dialogues at all")
            self.dims = {"text": first.text.shape[1], "audio": first.audio.shape[1]}
        self.validate()

    def validate(self) -> None:
        """Every problem the trainer would otherwise hit mid-run, raised up front."""
        num_classes = len(self.label_names)
        for split, dialogues in self.splits.items():
            if split not in SPLITS:
                raise DataError(f"{self.source}: unknown split {split!r} (expected one of {SPLITS})")
            for d in dialogues:
                where = f"{self.source}: dialogue {d.dialog_id!r} ({split})"
                n = len(d.labels)
                if n == 0:
                    raise DataError(f"{where}: empty dialogue (no utterances)")
                for name in ("text", "audio"):
                    x = getattr(d, name)
                    if x.ndim != 2 or x.shape[0] != n:
                        raise DataError(f"{where}: field '{name}': expected {n} rows of features, got shape {x.shape}")
                    if x.shape[1] != self.dims[name]:
                        raise DataError(
                            f"{where}: field '{name}': expected dimension {self.dims[name]}, got {x.shape[1]}"
                        )
                    huge = np.abs(np.nan_to_num(x, nan=0.0)) > MAX_FEATURE_ABS  # inf too; NaN = missing
                    if huge.any():
                        bad = int(np.argwhere(huge)[0][0])
                        raise DataError(
                            f"{where}: field '{name}': infinite or huge value (above {MAX_FEATURE_ABS:g}) in "
                            f"utterance {bad}; NaN marks a missing vector"
                        )
                if self.dims["text"] and self.dims["audio"]:
                    gone = np.isnan(d.text).any(1) & np.isnan(d.audio).any(1)
                    if gone.any():
                        raise DataError(
                            f"{where}: utterance {int(np.argmax(gone))} has neither text nor audio features"
                        )
                bad_labels = (d.labels != IGNORE) & ((d.labels < 0) | (d.labels >= num_classes))
                if bad_labels.any():
                    i = int(np.argmax(bad_labels))
                    raise DataError(
                        f"{where}: label {int(d.labels[i])} at utterance {i} is outside the label set "
                        f"0..{num_classes - 1} ({', '.join(self.label_names)})"
                    )
        if not self.splits.get("train"):
            raise DataError(f"{self.source}: the train split is empty")
        if not any((d.labels != IGNORE).any() for d in self.splits["train"]):
            raise DataError(f"{self.source}: the train split has no labelled utterance")

    def input_stats(self, split: str = "train") -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per-feature mean and std over every utterance of ``split`` (for FeatureNorm)."""
        return feature_stats(self.splits[split])

    def labels(self, split: str) -> np.ndarray:
        return np.concatenate([d.labels for d in self.splits[split]])


def feature_stats(dialogues: list[Dialogue]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per-feature mean and std over every utterance of ``dialogues`` (for FeatureNorm)."""
    stats = {}
    for m in ("text", "audio"):
        x = np.concatenate([getattr(d, m) for d in dialogues], axis=0).astype(np.float64)
        x = x[~np.isnan(x).any(1)]  # utterances missing this modality do not count
        mean, std = (x.mean(0), x.std(0)) if len(x) else (np.zeros(x.shape[1]), np.ones(x.shape[1]))
        stats[m] = (torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32))
    return stats


def carve_validation(dialogues: list[Dialogue], fraction: float, seed: int) -> tuple[list[Dialogue], list[Dialogue]]:
    """Hold ``fraction`` of the *training* dialogues out for model selection, by dialogue."""
    if len(dialogues) < 2:
        raise DataError(f"need at least 2 training dialogues to hold a validation part out, got {len(dialogues)}")
    order = np.random.default_rng(seed).permutation(len(dialogues))
    n_valid = min(len(dialogues) - 1, max(1, round(fraction * len(dialogues))))
    valid_idx = set(order[:n_valid].tolist())
    train = [d for i, d in enumerate(dialogues) if i not in valid_idx]
    valid = [d for i, d in enumerate(dialogues) if i in valid_idx]
    return train, valid
