"""Padded batches of whole dialogues, grouped by length.

Dialogues are turned into tensors once (:func:`tensorize`). Each epoch,
:func:`batch_indices` sorts them by a jittered length before cutting batches, so a batch
holds dialogues of similar length (little padding) while its membership still changes
from epoch to epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..distillation import IGNORE
from .conversation import Dialogue


@dataclass
class Batch:
    text: Tensor  # B×N×d_text
    audio: Tensor  # B×N×d_audio
    mask: Tensor  # B×N bool, True = real utterance
    labels: Tensor  # B×N long, IGNORE at padding and unlabelled utterances


@dataclass
class TensorDialogue:
    text: Tensor
    audio: Tensor
    labels: Tensor


def tensorize(dialogues: list[Dialogue]) -> list[TensorDialogue]:
    return [
        TensorDialogue(
            torch.as_tensor(d.text, dtype=torch.float32),
            torch.as_tensor(d.audio, dtype=torch.float32),
            torch.as_tensor(d.labels, dtype=torch.long),
        )
        for d in dialogues
    ]


def collate(items: list[TensorDialogue]) -> Batch:
    lengths = torch.tensor([len(it.labels) for it in items])
    n = int(lengths.max())
    b = len(items)
    text = items[0].text.new_zeros(b, n, items[0].text.shape[1])
    audio = items[0].audio.new_zeros(b, n, items[0].audio.shape[1])
    labels = torch.full((b, n), IGNORE, dtype=torch.long)
    for i, it in enumerate(items):
        k = len(it.labels)
        text[i, :k], audio[i, :k], labels[i, :k] = it.text, it.audio, it.labels
    mask = torch.arange(n)[None, :] < lengths[:, None]
    return Batch(text, audio, mask, labels)


def batch_indices(
    lengths: list[int], batch_size: int, rng: np.random.Generator | None = None, bucket: bool = True
) -> list[list[int]]:
    """Index lists of batches. ``rng`` None = evaluation order (sorted, deterministic)."""
    idx = np.arange(len(lengths))
    if rng is None:
        order = idx[np.argsort(lengths, kind="stable")] if bucket else idx
        return [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    if bucket:
        jitter = np.asarray(lengths, dtype=float) * rng.uniform(0.9, 1.1, size=len(lengths))
        order = idx[np.argsort(jitter, kind="stable")]
    else:
        order = rng.permutation(idx)
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        # BatchNorm (6) needs two dialogues for batch statistics: no one-dialogue batch.
        batches[-2].extend(batches.pop())
    rng.shuffle(batches)  # type: ignore[arg-type]
    return batches
