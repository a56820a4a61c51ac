"""A recording, decoded once to 16 kHz 16-bit PCM in a temporary WAV and read span by span.

A call-centre recording may be hours long (an hour of 16 kHz float32 is 230 MB per
channel); every stage reads only the span it works on, so memory stays bounded by the
longest span (a VAD block, an ASR chunk, one utterance), not the recording. ffmpeg
decodes and resamples as a stream (any container: wav, flac, mp3, mp4, ...); without
ffmpeg, a file soundfile reads is converted block by block.

Channels are kept: a stereo call has one speaker per channel (see ``lpgnet.recordings.speakers``).
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..features.audio import SAMPLE_RATE, SOUNDFILE_SUFFIXES, run_ffmpeg

BLOCK_SECONDS = 60.0  # the span a conversion without ffmpeg resamples at a time


class Recording:
    """A decoded recording: ``duration`` seconds, ``channels`` channels at 16 kHz.

    Use as a context manager (the temporary WAV is removed on exit), or call ``close``.
    """

    def __init__(self, source: str | Path, workdir: str | Path | None = None) -> None:
        self.source = Path(source)
        if not self.source.is_file():
            raise DataError(f"{self.source}: no such recording")
        self._tmp = tempfile.TemporaryDirectory(prefix="lpgnet-rec-", dir=workdir)
        self.path = Path(self._tmp.name) / "decoded.wav"
        try:
            _decode(self.source, self.path)
            import soundfile as sf

            self._file = sf.SoundFile(str(self.path))
        except BaseException:
            self._tmp.cleanup()
            raise
        self.channels = int(self._file.channels)
        self.frames = int(self._file.frames)
        self.duration = self.frames / SAMPLE_RATE
        if self.frames == 0:
            self.close()
            raise DataError(f"{self.source}: no audio samples (an empty recording)")

    def read(self, start: float = 0.0, end: float | None = None, channel: int | None = None) -> np.ndarray:
        """Samples of [start, end) seconds as float32: one channel, or the channels' mean (None)."""
        first = max(0, int(round(start * SAMPLE_RATE)))
        last = self.frames if end is None else min(self.frames, int(round(end * SAMPLE_RATE)))
        if last <= first:
            return np.zeros(0, np.float32)
        self._file.seek(first)
        data = self._file.read(last - first, dtype="float32", always_2d=True)
        return np.ascontiguousarray(data.mean(axis=1) if channel is None else data[:, channel], dtype=np.float32)

    def blocks(self, seconds: float, channel: int | None = None):
        """(offset seconds, samples) of consecutive ``seconds``-long blocks."""
        for k in range(math.ceil(self.duration / seconds)):
            yield k * seconds, self.read(k * seconds, (k + 1) * seconds, channel)

    def close(self) -> None:
        if getattr(self, "_file", None) is not None:
            self._file.close()
            self._file = None
        self._tmp.cleanup()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Waveform:
    """Samples already in memory (T×channels float32 at 16 kHz) behind ``Recording``'s
    reading interface: a live call's buffered audio, for the same stages."""

    def __init__(self, samples: np.ndarray) -> None:
        self.samples = samples if samples.ndim == 2 else samples[:, None]
        self.channels = int(self.samples.shape[1])
        self.frames = int(self.samples.shape[0])
        self.duration = self.frames / SAMPLE_RATE

    def read(self, start: float = 0.0, end: float | None = None, channel: int | None = None) -> np.ndarray:
        first = max(0, int(round(start * SAMPLE_RATE)))
        last = self.frames if end is None else min(self.frames, int(round(end * SAMPLE_RATE)))
        part = self.samples[first : max(first, last)]
        return np.ascontiguousarray(part.mean(axis=1) if channel is None else part[:, channel], dtype=np.float32)

    blocks = Recording.blocks


def _decode(source: Path, target: Path) -> None:
    """``source`` as 16 kHz PCM16 WAV at ``target``, channels kept (ffmpeg streams; soundfile blocks)."""
    if shutil.which("ffmpeg") is not None:
        args = ["-map", "0:a:0", "-vn", "-ar", str(SAMPLE_RATE), "-acodec", "pcm_s16le", "-f", "wav", "-y", str(target)]
        run_ffmpeg(source, args, failure="cannot decode this recording")
        return
    if source.suffix.lower() not in SOUNDFILE_SUFFIXES:
        raise DataError(
            f"{source}: reading {source.suffix or 'this'} files needs ffmpeg, which is not installed "
            "(install ffmpeg, or convert the recording to wav/flac)"
        )
    import soundfile as sf
    from scipy.signal import resample_poly

    try:
        info = sf.info(str(source))
    except (sf.SoundFileError, RuntimeError, OSError) as exc:
        raise DataError(f"{source}: cannot decode this recording ({' '.join(str(exc).split())[:300]})") from None
    g = math.gcd(int(info.samplerate), SAMPLE_RATE)
    up, down = SAMPLE_RATE // g, int(info.samplerate) // g
    block = int(BLOCK_SECONDS * info.samplerate) // down * down  # whole resampling periods per block
    with sf.SoundFile(str(target), "w", SAMPLE_RATE, info.channels, "PCM_16") as out:
        for data in sf.blocks(str(source), blocksize=block, dtype="float32", always_2d=True):
            if up != down:  # per block: the seams differ from one-pass resampling by filter edge effects only
                data = resample_poly(data, up, down, axis=0)
            out.write(np.clip(data, -1.0, 1.0))


Audio = Recording | Waveform  # what every stage reads: read(start, end, channel), blocks, channels, duration
