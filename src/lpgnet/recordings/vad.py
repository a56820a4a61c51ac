"""Voice-activity detection: where in a recording someone speaks (silero-vad, MIT; its
weights ship inside the package).

A recording is read in blocks (``block_seconds``) so that memory stays bounded; a
segment cut by a block edge is joined again. A pause of ``min_silence`` seconds ends
an utterance; an utterance longer than ``max_utterance`` seconds is split at its
longest pause (silero's own rule), because one emotion label per minute of speech
says little and the text encoder reads 128 tokens at most.
"""

from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..errors import ConfigError
from ..features.audio import SAMPLE_RATE
from .audio import Audio
from .segments import Segment

EDGE = 0.1  # seconds: a segment this close to a block edge on both sides continues across it


@dataclass
class VadConfig:
    threshold: float = 0.5  # speech probability above which a 32 ms frame is speech
    min_silence: float = 0.3  # seconds of silence that end an utterance
    min_speech: float = 0.25  # shorter bursts are dropped (clicks, breaths)
    pad: float = 0.05  # seconds added at both ends of each segment
    max_utterance: float = 20.0  # longer speech is split at a pause
    block_seconds: float = 300.0  # audio read and scored at a time

    def validate(self, where: str = "vad") -> None:
        if not 0 < self.threshold < 1:
            raise ConfigError(f"{where}.threshold: expected a probability in (0, 1), got {self.threshold}")
        for name in ("min_silence", "min_speech", "pad"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{where}.{name}: expected seconds >= 0, got {getattr(self, name)}")
        if self.max_utterance <= 1 or self.block_seconds < 2 * self.max_utterance:
            raise ConfigError(
                f"{where}: expected max_utterance > 1 s and block_seconds >= 2 x max_utterance, "
                f"got {self.max_utterance} and {self.block_seconds}"
            )


def load_vad() -> torch.nn.Module:
    try:
        from silero_vad import load_silero_vad
    except ImportError:
        raise ConfigError("voice-activity detection needs silero-vad: pip install 'lpgnet[analyze]'") from None
    with warnings.catch_warnings():  # its loader's own deprecation notices (importlib path, torch.jit)
        warnings.simplefilter("ignore", DeprecationWarning)
        return load_silero_vad()


def speech_segments(
    recording: Audio, model: torch.nn.Module, cfg: VadConfig, channel: int | None = None
) -> list[Segment]:
    """The speech segments of one channel (or of the channels mixed), in time order."""
    from silero_vad import get_speech_timestamps

    cfg.validate()
    found: list[Segment] = []
    blocks = recording.blocks(cfg.block_seconds, channel)
    total = math.ceil(recording.duration / cfg.block_seconds)
    for offset, wave in tqdm(blocks, total=total, desc="voice activity", leave=False, file=sys.stderr, disable=None):
        if wave.size < SAMPLE_RATE // 10:
            continue
        stamps = get_speech_timestamps(
            torch.from_numpy(wave),
            model,
            threshold=cfg.threshold,
            sampling_rate=SAMPLE_RATE,
            min_speech_duration_ms=int(cfg.min_speech * 1000),
            max_speech_duration_s=cfg.max_utterance,
            min_silence_duration_ms=int(cfg.min_silence * 1000),
            speech_pad_ms=int(cfg.pad * 1000),
        )
        for s in stamps:
            start, end = offset + s["start"] / SAMPLE_RATE, offset + s["end"] / SAMPLE_RATE
            if found and offset > 0 and start - offset < EDGE and offset - found[-1].end < EDGE:
                found[-1].end = end  # one utterance across the block edge
            else:
                found.append(Segment(start, end, channel=channel))
    return found
