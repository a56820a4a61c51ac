"""Who spoke each segment: one speaker per channel, or speaker embeddings clustered.

Call centres record each side of a call on its own channel, which settles the question
exactly; ``channel_speakers`` decides whether a multi-channel file is such a recording
(channels that differ) or one microphone stored twice (channels alike, or all but one
silent), and drops the faint copy of a voice that leaked into the other channel.

On a mono recording every segment is embedded in 1.6 s windows (Resemblyzer's GE2E
encoder, Apache-2.0, weights in the package), the windows are clustered (average
linkage on cosine distance) into ``--speakers N`` groups when the number is known, else
cut at ``threshold``, and a segment whose voice changes inside it is cut there
(``voice_turns``). Speakers are named in order of first appearance: S1, S2, ... (ch1,
ch2, ... for channels).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ..errors import ConfigError
from ..features.audio import SAMPLE_RATE
from .audio import Audio
from .segments import Segment

PROBE_SECONDS = 120.0  # of a multi-channel file, looked at to decide how its channels split
WINDOW_RATE = 4  # speaker windows per second inside a segment (turn changes without a pause)
MIN_TURN = 3  # windows (0.75 s) another voice must hold before a segment is split there
MAX_CLUSTERED = 2000  # windows clustered at most (agglomerative clustering is quadratic)


@dataclass
class SpeakerConfig:
    speakers: int | None = None  # known number of speakers (mono); None = estimated
    max_speakers: int = 8
    threshold: float = 0.3  # cosine distance at which two voices stay apart (chosen in docs/ANALYZE.md)
    channels: str = "auto"  # "auto", "split" (one speaker per channel) or "mix"
    bleed: float = 0.3  # a channel quieter than this x the loudest over a segment only hears leakage
    turns: bool = True  # mono: also cut a segment where the voice changes inside it (voice_turns)

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

    def embed_windows(self, wave: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of 1.6 s windows every ``1 / WINDOW_RATE`` s, and each window's centre (s)."""
        from resemblyzer.audio import normalize_volume

        level = normalize_volume(wave, -30, increase_only=True)  # not trimmed: times must stay put
        _, partials, slices = self._encoder.embed_utterance(level, return_partials=True, rate=WINDOW_RATE)
        centres = np.array([min((s.start + s.stop) / 2, wave.size) / SAMPLE_RATE for s in slices])
        return np.asarray(partials, np.float32), centres


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
    """Fill ``speaker`` of every segment in place: by channel when ``split``, else by voice
    (``segments`` may then be cut where the voice changes, see ``voice_turns``)."""
    if split:
        for seg in segments:
            seg.speaker = f"ch{seg.channel + 1}"  # type: ignore[operator]
        return
    if cfg.speakers == 1 or len(segments) < 2:
        for seg in segments:
            seg.speaker = "S1"
        return
    assert encoder is not None
    segments[:] = voice_turns(recording, segments, cfg, encoder)


def voice_turns(
    recording: Audio, segments: list[Segment], cfg: SpeakerConfig, encoder: SpeakerEncoder
) -> list[Segment]:
    """Speakers by voice, from windows: every segment is embedded in 1.6 s windows
    (``WINDOW_RATE`` per second), the windows are clustered, and each segment takes its
    windows' voice -- or, with ``cfg.turns``, is cut where a run of at least ``MIN_TURN``
    windows changes voice (a reply without a pause, or overlap), at the midpoint between
    the runs. Windows rather than whole segments are clustered because a segment holding
    two voices embeds between them and would bridge their clusters. At most
    ``MAX_CLUSTERED`` windows (evenly spaced) are clustered; the rest join the nearest
    cluster's mean, which keeps an hour-long recording's clustering small."""
    windows, owner, centres = [], [], []
    for i, seg in enumerate(tqdm(segments, desc="speakers", leave=False, file=sys.stderr, disable=None)):
        w, c = encoder.embed_windows(recording.read(seg.start, seg.end))
        windows.append(w)
        owner += [i] * len(w)
        centres.append(c)
    x = np.concatenate(windows)
    pick = np.linspace(0, len(x) - 1, min(len(x), MAX_CLUSTERED)).round().astype(int)
    picked = np.asarray(cluster(x[pick], cfg))
    means = np.stack([x[pick][picked == k].mean(0) for k in range(picked.max() + 1)])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    labels = (x @ means.T).argmax(1)
    out: list[Segment] = []
    at = 0
    for seg, c in zip(segments, centres):
        own = labels[at : at + len(c)].tolist()
        at += len(c)
        runs = _runs(own)
        if not cfg.turns or len(runs) == 1:
            out.append(Segment(seg.start, seg.end, str(int(np.bincount(own).argmax())), seg.text, seg.channel))
            continue
        cuts = [seg.start] + [seg.start + (c[a[2]] + c[b[1]]) / 2 for a, b in zip(runs, runs[1:])] + [seg.end]
        out += [Segment(t0, t1, str(r[0]), seg.text, seg.channel) for r, t0, t1 in zip(runs, cuts, cuts[1:])]
    order: dict[str, int] = {}
    for seg in out:
        seg.speaker = f"S{order.setdefault(seg.speaker, len(order)) + 1}"
    return out


def _runs(labels: list[int]) -> list[list[int]]:
    """[label, first, last] runs of at least ``MIN_TURN`` windows (shorter ones join the run
    before them; a segment without a long run is one run of its most frequent label)."""
    runs: list[list[int]] = []
    for j, v in enumerate(labels):
        if runs and runs[-1][0] == v:
            runs[-1][2] = j
        else:
            runs.append([v, j, j])
    long = [r for r in runs if r[2] - r[1] + 1 >= MIN_TURN]
    if not long:
        return [[int(np.bincount(labels).argmax()), 0, len(labels) - 1]]
    merged = [long[0]]
    for r in long[1:]:
        if r[0] == merged[-1][0]:
            merged[-1][2] = r[2]
        else:
            merged.append(r)
    return merged
