"""Who spoke each segment: one speaker per channel, or speaker embeddings clustered.

Call centres record each side of a call on its own channel, which settles the question
exactly; ``channel_speakers`` decides whether a multi-channel file is such a recording
(channels that differ) or one microphone stored twice (channels alike, or all but one
silent), and drops the faint copy of a voice that leaked into the other channel.

On a mono recording each segment gets a speaker embedding (Resemblyzer's GE2E encoder,
Apache-2.0, weights in the package), and the embeddings are clustered (average linkage
on cosine distance): into ``--speakers N`` groups when the number is known, else cut at
``threshold``. Speakers are named in order of first appearance: S1, S2, ... (ch1, ch2,
... for channels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..features.audio import SAMPLE_RATE
from .audio import Audio
from .segments import Segment

PROBE_SECONDS = 120.0  # of a multi-channel file, looked at to decide how its channels split


@dataclass
class SpeakerConfig:
    speakers: int | None = None  # known number of speakers (mono); None = estimated
    max_speakers: int = 8
    threshold: float = 0.35  # cosine distance at which two clusters stay apart (see docs/ANALYZE.md)
    channels: str = "auto"  # "auto", "split" (one speaker per channel) or "mix"
    bleed: float = 0.3  # a channel quieter than this x the loudest over a segment only hears leakage

    def validate(self, where: str = "speakers") -> None:
        if self.channels not in ("auto", "split", "mix"):
            raise ConfigError(f"{where}.channels: expected 'auto', 'split' or 'mix', got {self.channels!r}")
        if self.speakers is not None and not 1 <= self.speakers <= self.max_speakers:
            raise ConfigError(
                f"{where}.speakers: expected 1 to {self.max_speakers} (max_speakers), got {self.speakers}"
            )
        if not 0 < self.threshold < 2:
            raise ConfigError(f"{where}.threshold: expected a cosine distance in (0, 2), got {self.threshold}")


def split_channels(recording: Audio, mode: str = "auto") -> bool:
    """Whether each channel of ``recording`` is its own speaker (see the module doc)."""
    if recording.channels < 2 or mode == "mix":
        return False
    if mode == "split":
        return True
    probe = np.stack([recording.read(0, PROBE_SECONDS, c) for c in range(recording.channels)])
    rms = np.sqrt((probe.astype(np.float64) ** 2).mean(axis=1))
    if (rms > 0.01 * rms.max()).sum() < 2:
        return False  # one channel carries everything: mono stored as stereo
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(np.corrcoef(probe))
    np.fill_diagonal(corr, 0)
    return bool(np.abs(corr).max() < 0.9)


def drop_bleed(recording: Audio, segments: list[Segment], bleed: float) -> list[Segment]:
    """Segments of split channels, less those whose channel is far quieter than another over them
    (the other side's voice heard faintly through a headset)."""
    kept = []
    for seg in segments:
        loud = [
            float(np.sqrt(np.mean(recording.read(seg.start, seg.end, c).astype(np.float64) ** 2) + 1e-20))
            for c in range(recording.channels)
        ]
        if loud[seg.channel] >= bleed * max(loud):  # type: ignore[index]
            kept.append(seg)
    return kept


class SpeakerEncoder:
    """Resemblyzer's voice encoder: a unit-length 256-d embedding per stretch of speech."""

    def __init__(self) -> None:
        try:
            from resemblyzer import VoiceEncoder
        except ImportError:
            raise ConfigError(
                "telling speakers apart on a mono recording needs Resemblyzer: pip install 'lpgnet[analyze]' "
                "(or give --speakers 1, a multi-channel recording, or --segments with speakers)"
            ) from None
        self._encoder = VoiceEncoder("cpu", verbose=False)

    def embed(self, wave: np.ndarray) -> np.ndarray:
        from resemblyzer import preprocess_wav

        trimmed = preprocess_wav(wave, source_sr=SAMPLE_RATE)  # volume-normalised, long pauses trimmed
        if trimmed.size < SAMPLE_RATE // 2:
            trimmed = wave  # too little left after trimming: embed what there is
        return np.asarray(self._encoder.embed_utterance(trimmed), np.float32)


def cluster(embeddings: np.ndarray, cfg: SpeakerConfig) -> list[int]:
    """A cluster index per embedding, numbered in order of first appearance."""
    n = len(embeddings)
    if n == 0:
        return []
    if cfg.speakers == 1 or n == 1:
        return [0] * n
    from sklearn.cluster import AgglomerativeClustering

    if cfg.speakers is not None:
        algo = AgglomerativeClustering(n_clusters=min(cfg.speakers, n), metric="cosine", linkage="average")
    else:
        algo = AgglomerativeClustering(
            n_clusters=None, metric="cosine", linkage="average", distance_threshold=cfg.threshold
        )
    raw = algo.fit_predict(embeddings).tolist()
    if cfg.speakers is None and len(set(raw)) > cfg.max_speakers:
        raw = (
            AgglomerativeClustering(n_clusters=cfg.max_speakers, metric="cosine", linkage="average")
            .fit_predict(embeddings)
            .tolist()
        )
    order: dict[int, int] = {}
    for r in raw:
        order.setdefault(r, len(order))
    return [order[r] for r in raw]


def assign_speakers(
    recording: Audio, segments: list[Segment], cfg: SpeakerConfig, split: bool, encoder: SpeakerEncoder | None
) -> None:
    """Fill ``speaker`` of every segment in place (by channel when ``split``, else by clustering)."""
    if split:
        for seg in segments:
            seg.speaker = f"ch{seg.channel + 1}"  # type: ignore[operator]
        return
    if cfg.speakers == 1 or len(segments) < 2:
        labels = [0] * len(segments)
    else:
        assert encoder is not None
        embeddings = np.stack([encoder.embed(recording.read(s.start, s.end)) for s in segments])
        labels = cluster(embeddings, cfg)
    for seg, k in zip(segments, labels):
        seg.speaker = f"S{k + 1}"
