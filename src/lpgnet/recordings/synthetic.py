"""Generated conversations with known turns: espeak-ng voices reading known sentences,
mixed into mono or multi-channel recordings with pauses and overlap.

They are the ground truth that ``lpgnet.recordings.quality`` scores a segmentation
against (boundaries, speakers, words) and what CI analyses end to end. The truth is
written beside the recording as a CSV in the ``--segments`` format (start, end,
speaker, text), with times of the voice itself (espeak-ng's own leading and trailing
silence trimmed).

    python -m lpgnet.recordings.synthetic out/call.wav --turns 12 --speakers 2 --channels 2 --overlap 0.2
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ..features.audio import SAMPLE_RATE, load_audio
from ..files import atomic_path
from .segments import Segment

# (espeak-ng voice, pitch 0-99): three voices Resemblyzer keeps apart (cosine 0.53-0.73
# across, 0.89-0.93 within; measured in docs/ANALYZE.md's generator notes)
VOICES = (("en-gb-scotland+m7", 50), ("en-us+f5", 70), ("en+klatt2", 40))

SENTENCES = (
    "I can't believe you did that again, it is really unfair.",
    "Well, I think we should go to the beach tomorrow morning.",
    "Nobody told me anything about the meeting on Friday.",
    "That is wonderful news, congratulations to both of you.",
    "Why do you always have to be so late?",
    "I miss her so much, the house feels empty now.",
    "Sure, I can send you the report after lunch.",
    "This is the third time my order has been lost.",
    "We won the tickets, we are going to the concert!",
    "I don't know what to say, it just happened.",
    "Could you please check my account balance?",
    "Stop shouting at me, I am doing my best.",
    "The weather was lovely and the food was great.",
    "I have been waiting on the phone for an hour.",
    "Thank you so much, you really helped me today.",
    "Maybe we can talk about it some other time.",
    "He left without saying goodbye to anyone.",
    "Your refund will arrive within five working days.",
    "Oh really, that is the best thing I have heard all week.",
    "I am sorry, there is nothing more I can do.",
)


def speak(text: str, voice: str, pitch: int, speed: int = 160) -> np.ndarray:
    """``text`` read by espeak-ng, 16 kHz mono float32, leading and trailing silence trimmed."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ConfigError("generating test speech needs espeak-ng (apt install espeak-ng)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        proc = subprocess.run(
            [exe, "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(wav), text], capture_output=True
        )
        if proc.returncode != 0:
            raise DataError(f"espeak-ng voice {voice!r}: {proc.stderr.decode(errors='replace').strip()[:200]}")
        wave = load_audio(wav)
    loud = np.flatnonzero(np.abs(wave) > 0.01 * np.abs(wave).max())
    return wave[loud[0] : loud[-1] + 1]


def make_conversation(
    out: str | Path,
    turns: int = 8,
    speakers: int = 2,
    channels: int = 1,
    pause: tuple[float, float] = (0.5, 1.2),
    overlap: float = 0.0,
    seed: int = 0,
    noise_db: float = -50.0,
) -> list[Segment]:
    """Write a conversation to ``out`` (WAV, PCM16) and its truth to ``out`` with ``.truth.csv``.

    Speakers take turns (never the same twice in a row); each pause is uniform in
    ``pause``; with probability ``overlap`` a turn starts 0.2-0.5 s before the previous
    one ends instead. ``channels`` > 1 puts speaker k on channel k mod channels (a call
    recorded per side); 1 mixes everyone. White noise at ``noise_db`` dBFS is added.
    """
    if not 1 <= speakers <= len(VOICES):
        raise ConfigError(f"speakers: expected 1 to {len(VOICES)}, got {speakers}")
    if channels < 1 or turns < 1:
        raise ConfigError("channels and turns: expected positive integers")
    rng = np.random.default_rng(seed)
    truth: list[Segment] = []
    waves: list[np.ndarray] = []
    t, who = 0.5, -1
    for k in range(turns):
        who = (who + 1 + int(rng.integers(speakers - 1))) % speakers if speakers > 1 else 0
        text = SENTENCES[int(rng.integers(len(SENTENCES)))]
        wave = speak(text, *VOICES[who])
        if k and rng.random() < overlap:
            t = max(truth[-1].start + 0.3, truth[-1].end - float(rng.uniform(0.2, 0.5)))
        elif k:
            t = truth[-1].end + float(rng.uniform(*pause))
        truth.append(Segment(t, t + wave.size / SAMPLE_RATE, speaker=f"V{who + 1}", text=text, channel=who % channels))
        waves.append(wave)
    total = int((max(s.end for s in truth) + 0.5) * SAMPLE_RATE)
    mix = np.zeros((total, channels), np.float32)
    for seg, wave in zip(truth, waves):
        first = int(round(seg.start * SAMPLE_RATE))
        mix[first : first + wave.size, seg.channel] += wave
    mix *= 0.8 / max(1e-9, float(np.abs(mix).max()))
    mix += rng.normal(0, 10 ** (noise_db / 20), mix.shape).astype(np.float32)
    import soundfile as sf

    out = Path(out)
    with atomic_path(out) as tmp:
        sf.write(str(tmp), np.clip(mix, -1, 1), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    write_segments(out.with_suffix(".truth.csv"), truth)
    return truth


def write_segments(path: str | Path, segments: list[Segment]) -> None:
    """A CSV in the ``--segments`` format (start, end, speaker, text), written atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["start", "end", "speaker", "text"])
    for s in segments:
        writer.writerow([f"{s.start:.3f}", f"{s.end:.3f}", s.speaker, s.text or ""])
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue(), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lpgnet.recordings.synthetic", description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="the WAV to write (its truth goes to <out>.truth.csv)")
    p.add_argument("--turns", type=int, default=8)
    p.add_argument("--speakers", type=int, default=2)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--overlap", type=float, default=0.0, help="share of turns that start before the last one ends")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    truth = make_conversation(a.out, a.turns, a.speakers, a.channels, overlap=a.overlap, seed=a.seed)
    print(f"{a.out}: {len(truth)} turns, {truth[-1].end + 0.5:.1f} s; truth in {Path(a.out).with_suffix('.truth.csv')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
