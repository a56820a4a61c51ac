"""A live call: audio chunks in, each finished utterance's emotion out, as it is recognised.

    call = CallSession(analyzer, channels=2)
    for chunk in pcm_chunks:          # 16-bit little-endian PCM at 16 kHz, channels interleaved
        for row in call.add(chunk):   # the utterances that ended in the audio so far
            print(row["speaker"], row["text"], row["label"])
    rest = call.end()                 # the last ones, once the call hangs up

The audio since the last finished utterance is kept and voice-activity detection is run
over it on every chunk. An utterance is finished when at least ``min_silence`` (plus
the segment padding) of audio has followed its end: the same rule that ends it in
``lpgnet analyze``. It is then given its speaker (its channel; on a mono call the
nearest known voice, or a new one), its words and features, and predicted from it and
the utterances before it (``StreamingSession``: bounded history). The buffer is cut
where the first utterance still open begins (in silence: all but the last
``min_silence``), so memory is bounded by the longest utterance (``max_utterance``)
plus one chunk.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError
from ..features.audio import SAMPLE_RATE
from ..recordings.asr import transcribe
from ..recordings.audio import Waveform
from ..recordings.segments import Segment
from ..recordings.speakers import drop_bleed
from ..recordings.vad import speech_segments
from .analyze import Analyzer


class CallSession:
    """One call's state (see the module doc)."""

    def __init__(self, analyzer: Analyzer, channels: int = 1, speakers: int | None = None) -> None:
        if channels < 1 or channels > 8:
            raise DataError(f"channels: expected 1 to 8, got {channels}")
        self.analyzer = analyzer
        self.channels = channels
        self.speaker_cfg = analyzer.speaker_config(speakers)
        self.session = analyzer.predictor.stream()
        self.buffer = np.zeros((0, channels), np.float32)
        self.offset = 0.0  # seconds of the call before the buffer's first sample
        self.voices: list[np.ndarray] = []  # mono calls: the mean embedding of each speaker so far
        self.count = 0  # utterances answered
        self.answered: dict[int | None, float] = {}  # per channel: where its last answered utterance ended

    @property
    def seconds(self) -> float:
        return self.offset + len(self.buffer) / SAMPLE_RATE

    def add(self, pcm: bytes) -> list[dict[str, Any]]:
        """Append a chunk of interleaved 16-bit PCM; the utterances it finished."""
        width = 2 * self.channels
        if len(pcm) % width:
            raise DataError(
                f"audio chunk: {len(pcm)} bytes is not a whole number of {self.channels}-channel 16-bit frames "
                f"(expected a multiple of {width})"
            )
        samples = np.frombuffer(pcm, dtype="<i2").reshape(-1, self.channels).astype(np.float32) / 32768.0
        self.buffer = np.concatenate([self.buffer, samples])
        return self._finish(final=False)

    def end(self) -> list[dict[str, Any]]:
        """The utterances still open when the call ends."""
        return self._finish(final=True)

    def _finish(self, final: bool) -> list[dict[str, Any]]:
        audio = Waveform(self.buffer)
        if audio.duration < 0.1:
            return []
        vad = self.analyzer.cfg.vad
        split = self.channels > 1
        channels: list[int | None] = list(range(self.channels)) if split else [None]
        found = [
            s
            for c in channels
            for s in speech_segments(audio, self.analyzer.vad, vad, c)
            if self.offset + s.start >= self.answered.get(c, 0.0) - 0.05  # not one answered already
        ]
        found.sort(key=lambda s: (s.start, s.end))
        safe = audio.duration if final else audio.duration - (vad.min_silence + vad.pad + 0.05)
        done = [s for s in found if s.end <= safe]
        for s in done:
            self.answered[s.channel] = self.offset + s.end
        if split and done:
            done = drop_bleed(audio, done, self.analyzer.cfg.speakers.bleed)
        rows = [self._answer(audio, s) for s in done]
        # keep the buffer from the first utterance still open (or, in silence, from ``safe``)
        cut = max(0.0, min([s.start for s in found if s.end > safe], default=safe))
        keep = int(round(cut * SAMPLE_RATE))
        self.buffer = self.buffer[keep:]
        self.offset += keep / SAMPLE_RATE
        return rows

    def _speaker(self, audio: Waveform, seg: Segment) -> str:
        if seg.channel is not None:
            return f"ch{seg.channel + 1}"
        cfg = self.speaker_cfg
        if cfg.speakers == 1:
            return "S1"
        voice = self.analyzer.speaker_encoder.embed(audio.read(seg.start, seg.end))
        limit = cfg.speakers or cfg.max_speakers
        if self.voices:
            distance = [1 - float(v @ voice / (np.linalg.norm(v) * np.linalg.norm(voice) + 1e-9)) for v in self.voices]
            best = int(np.argmin(distance))
            new = len(self.voices) < limit and (distance[best] > cfg.threshold)
            if not new:
                self.voices[best] = self.voices[best] + voice
                return f"S{best + 1}"
        self.voices.append(voice)
        return f"S{len(self.voices)}"

    def _answer(self, audio: Waveform, seg: Segment) -> dict[str, Any]:
        seg.speaker = self._speaker(audio, seg)
        if "text" in self.analyzer.use:
            transcribe(audio, [seg], self.analyzer.transcriber)
        clock = dict.fromkeys(("features",), 0.0)
        utterance = self.analyzer.utterances(audio, [seg], clock)[0]
        start, end = self.offset + seg.start, self.offset + seg.end
        if len(utterance) == 1:  # only the speaker: a text-only model heard no words
            row: dict[str, Any] = {"label": None, "probs": None, "missing": ["text"]}
        else:
            row = self.session.add(utterance, where=f"call at {start:.1f} s")
        self.count += 1
        return {
            "turn": self.count - 1,
            "start": round(start, 3),
            "end": round(end, 3),
            "speaker": seg.speaker,
            "text": seg.text,
            **row,
        }
