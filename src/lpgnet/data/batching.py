"""Padded batches of whole dialogues, grouped by length.

Dialogues are turned into tensors once (:func:`tensorize`), speakers included as
integer indices (:func:`speaker_indices`) for the models that may read them. Each epoch,
:func:`batch_indices` sorts them by a jittered length before cutting batches, so a batch
holds dialogues of similar length (little padding) while its membership still changes
from epoch to epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from .conversation import IGNORE, Dialogue


@dataclass
class Batch:
    text: Tensor  # B×N×d_text
    audio: Tensor  # B×N×d_audio
    mask: Tensor  # B×N bool, True = real utterance
    labels: Tensor  # B×N long, IGNORE at padding and unlabelled utterances
    speakers: Tensor  # B×N long speaker indices (see speaker_indices), 0 at padding
    extras: dict[str, Tensor] = field(default_factory=dict)  # model inputs beyond these (frame masks)

    def model_kwargs(self, model_config: Any) -> dict[str, Any]:
        """What a model reads beyond (text, audio, mask): speaker indices for a model whose
        config has a ``speakers`` section (LPGNet, SDT), the frame masks of a frame batch."""
        extra = dict(self.extras)
        if getattr(model_config, "speakers", None) is not None:
            extra["speakers"] = self.speakers
        return extra

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on ``device`` (a no-op on the CPU)."""
        move = lambda t: t.to(device, non_blocking=True)  # noqa: E731
        return Batch(
            move(self.text),
            move(self.audio),
            move(self.mask),
            move(self.labels),
            move(self.speakers),
            {k: move(v) for k, v in self.extras.items()},
        )


@dataclass
class TensorDialogue:
    text: Tensor
    audio: Tensor
    labels: Tensor
    speakers: Tensor | None = None


GENDER = {"M": 0, "F": 1}  # SDT's IEMOCAP loader: male 0, female 1


def speaker_indices(dialogue: Dialogue, scheme: list[str] | str | None = None) -> list[int]:
    """Integer speakers for speaker embeddings (SDT-style; LPGNet itself reads none).

    ``scheme`` None ("party"): each speaker's order of first appearance in *this*
    dialogue, 0, 1, 2, ... -- who speaks when, with no identity across dialogues.
    A list ("identity", the training split's speakers): index + 1, and 0 for a speaker
    not in it, so every unseen speaker shares one embedding. ``"gender"``: the last
    letter of the speaker's name (IEMOCAP's ``Ses01_F``), M = 0 and F = 1, as SDT's
    IEMOCAP loader indexes speakers. Dialogues without speaker names give all zeros.
    """
    names = dialogue.speakers or [""] * len(dialogue)
    if scheme == "gender":
        bad = next((n for n in names if n[-1:] not in GENDER), None)
        if bad is not None:
            raise DataError(
                f"dialogue {dialogue.dialog_id!r}: speaker {bad!r}: model.speakers.embedding 'gender' needs "
                "speaker names ending in M or F (as IEMOCAP's Ses01_M)"
            )
        return [GENDER[n[-1]] for n in names]
    if scheme is not None:
        lookup = {name: i + 1 for i, name in enumerate(scheme)}
        return [lookup.get(name, 0) for name in names]
    order: dict[str, int] = {}
    return [order.setdefault(name, len(order)) for name in names]


def tensorize(dialogues: list[Dialogue], speaker_scheme: list[str] | str | None = None) -> list[TensorDialogue]:
    return [
        TensorDialogue(
            torch.as_tensor(d.text, dtype=torch.float32),
            torch.as_tensor(d.audio, dtype=torch.float32),
            torch.as_tensor(d.labels, dtype=torch.long),
            torch.as_tensor(speaker_indices(d, speaker_scheme), dtype=torch.long),
        )
        for d in dialogues
    ]


@dataclass
class FrameItem:
    """One labelled utterance for LPGNet (Frame): its text and audio frame sequences
    (an utterance-level vector is a sequence of one frame)."""

    text: Tensor  # T×d_text
    audio: Tensor  # S×d_audio
    labels: Tensor  # [label]: one utterance, so "dialogue length" 1 for the trainer


def frame_items(dialogues: list[Dialogue], max_frames: int) -> list[FrameItem]:
    """Every labelled utterance as a FrameItem, sequences cut to ``max_frames``; a modality
    without frames contributes its utterance vector as one frame."""
    items = []
    for d in dialogues:
        for i, y in enumerate(d.labels):
            if y == IGNORE:
                continue
            seqs = []
            for m in ("text", "audio"):
                frames = getattr(d, f"{m}_frames")
                x = frames[i] if frames is not None else getattr(d, m)[i : i + 1]
                seqs.append(torch.as_tensor(np.asarray(x[:max_frames], dtype=np.float32)))
            items.append(FrameItem(seqs[0], seqs[1], torch.tensor([int(y)])))
    return items


def item_lengths(items: list) -> list[int]:
    """What batches are grouped by: dialogue length, or an utterance's frame count."""
    return [len(it.text) if isinstance(it, FrameItem) else len(it.labels) for it in items]


def slot_bound(items: list, max_slots: int) -> int | None:
    """``max_slots`` for batches of dialogues; None for LPGNet (Frame)'s single
    utterances, whose batches are bounded by their size and ``max_frames`` already."""
    return None if items and isinstance(items[0], FrameItem) else max_slots


def _pad(seqs: list[Tensor]) -> tuple[Tensor, Tensor]:
    lengths = torch.tensor([len(x) for x in seqs])
    out = seqs[0].new_zeros(len(seqs), int(lengths.max()), seqs[0].shape[1])
    for i, x in enumerate(seqs):
        out[i, : len(x)] = x
    return out, torch.arange(out.shape[1])[None, :] < lengths[:, None]


def collate(items: list) -> Batch:
    if isinstance(items[0], FrameItem):  # a batch of utterances, each its own "dialogue" of one
        text, text_mask = _pad([it.text for it in items])
        audio, audio_mask = _pad([it.audio for it in items])
        b = len(items)
        return Batch(
            text,
            audio,
            torch.ones(b, 1, dtype=torch.bool),
            torch.stack([it.labels for it in items]),
            torch.zeros(b, 1, dtype=torch.long),
            {"text_mask": text_mask, "audio_mask": audio_mask},
        )
    return _collate_dialogues(items)


def _collate_dialogues(items: list[TensorDialogue]) -> Batch:
    lengths = torch.tensor([len(it.labels) for it in items])
    n = int(lengths.max())
    b = len(items)
    text = items[0].text.new_zeros(b, n, items[0].text.shape[1])
    audio = items[0].audio.new_zeros(b, n, items[0].audio.shape[1])
    labels = torch.full((b, n), IGNORE, dtype=torch.long)
    speakers = torch.zeros((b, n), dtype=torch.long)
    for i, it in enumerate(items):
        k = len(it.labels)
        text[i, :k], audio[i, :k], labels[i, :k] = it.text, it.audio, it.labels
        if it.speakers is not None:
            speakers[i, :k] = it.speakers
    mask = torch.arange(n)[None, :] < lengths[:, None]
    return Batch(text, audio, mask, labels, speakers)


def batch_indices(
    lengths: list[int],
    batch_size: int,
    rng: np.random.Generator | None = None,
    bucket: bool = True,
    merge_single: bool = True,
    max_slots: int | None = None,
) -> list[list[int]]:
    """Index lists of batches of similar length (little padding); ``rng`` None = evaluation
    order (sorted, deterministic), else lengths jittered and batches shuffled each epoch.
    ``merge_single``: fold a one-item last batch into the one before (BatchNorm needs two).
    ``max_slots``: a batch whose padded size (items x its longest item) would exceed it is
    cut into smaller ones (two items at least), so memory stays bounded however long the
    items (``train.max_batch_utterances``); batches within it are exactly as without it."""
    idx = np.arange(len(lengths))
    if rng is None:
        order = idx[np.argsort(lengths, kind="stable")] if bucket else idx
        return _bounded(
            [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)], lengths, max_slots
        )
    if bucket:
        jitter = np.asarray(lengths, dtype=float) * rng.uniform(0.9, 1.1, size=len(lengths))
        order = idx[np.argsort(jitter, kind="stable")]
    else:
        order = rng.permutation(idx)
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    if merge_single and len(batches) > 1 and len(batches[-1]) == 1:
        # BatchNorm (6) needs two dialogues for batch statistics: no one-dialogue batch.
        batches[-2].extend(batches.pop())
    batches = _bounded(batches, lengths, max_slots)
    rng.shuffle(batches)  # type: ignore[arg-type]
    return batches


def _bounded(batches: list[list[int]], lengths: list[int], max_slots: int | None) -> list[list[int]]:
    """Each batch, or its consecutive pieces of at most ``max_slots`` padded slots (at
    least two items each: a lone last item takes the one before it along, or joins a
    piece of two)."""
    if max_slots is None:
        return batches
    out = []
    for batch in batches:
        pieces: list[list[int]] = []
        piece: list[int] = []
        longest = 0
        for i in batch:
            if len(piece) >= 2 and (len(piece) + 1) * max(longest, lengths[i]) > max_slots:
                pieces.append(piece)
                piece, longest = [], 0
            piece.append(i)
            longest = max(longest, lengths[i])
        if len(piece) == 1 and pieces:  # BatchNorm needs two: borrow the piece before's longest
            if len(pieces[-1]) > 2:
                piece.insert(0, pieces[-1].pop())
            else:
                pieces[-1] += piece
                piece = []
        if piece:
            pieces.append(piece)
        out += pieces
    return out
