"""The built-in synthetic conversation corpus: ``lpgnet train`` works anywhere, no data.

It is small and fast, but built so that each part of LPGNet has something to do and a
context-free model provably cannot solve it. Six classes, and what makes each one hard:

==========  ============================  =============================================
property    how it is generated           what it tests
==========  ============================  =============================================
audio-only  ``hap`` and ``exc`` share one  the audio stream and the fusion gate must be
            text prototype; only their     used (a text-only model confuses them)
            audio prototypes differ
text-only   ``ang`` and ``fru`` share one  the text stream is needed (an audio-only
            audio prototype; only their    model confuses them)
            text prototypes differ
context-    ``neu`` and ``sad`` share both a dialogue's *mood* decides which of the
only        prototypes. Each dialogue is   two its low-arousal utterances are; the mood
            calm (-> ``neu``) or gloomy    is faint in one utterance (d' = mood_strength
            (-> ``sad``); every utterance  per modality) and clear once many utterances
            carries a faint mood shift     are pooled (LPIA's attention / compression)
inertia     a speaker keeps their emotion  a fraction of utterances are *weak* (faint
            on their next turn with        cues) and are best resolved from the same
            probability ``inertia``        speaker's neighbouring turns
speakers    each speaker has a random      speaker independence: test speakers never
            feature offset (voice, style)  appear in training, so memorising speaker
            and a favourite emotion        quirks does not pay off on the test split
unlabelled  a fraction of utterances have  labels ``IGNORE``: kept as context, left out
            no label                       of loss and metrics
==========  ============================  =============================================

Features are drawn as prototype * strength + mood shift + speaker offset + N(0, I) noise,
with prototype spacing set by ``class_separation`` (a d' between two classes at full
strength). Everything is fixed by ``seed``, so every run sees the same corpus.
"""

from __future__ import annotations

import numpy as np

from ..config import SyntheticConfig
from .conversation import IGNORE, DataBundle, Dialogue

LABELS = ["neu", "sad", "hap", "exc", "ang", "fru"]
# Hidden emotional states; the low-arousal state is labelled neu or sad by the mood.
STATES = ["low", "hap", "exc", "ang", "fru"]
TEXT_PROTO = {"low": 0, "hap": 1, "exc": 1, "ang": 2, "fru": 3}  # hap/exc share text
AUDIO_PROTO = {"low": 0, "hap": 1, "exc": 2, "ang": 3, "fru": 3}  # ang/fru share audio
STATE_PRIOR = {  # calm and gloomy dialogues draw states differently
    "calm": np.array([0.35, 0.20, 0.15, 0.10, 0.20]),
    "gloomy": np.array([0.45, 0.08, 0.04, 0.18, 0.25]),
}


def _unit_scaled(rng: np.random.Generator, n: int, d: int, norm: float) -> np.ndarray:
    v = rng.standard_normal((n, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True) * norm


def make_synthetic(cfg: SyntheticConfig | None = None):  # -> DataBundle
    """Generate the corpus: ``train`` and ``test`` splits (validation is carved later)."""
    cfg = cfg or SyntheticConfig()
    rng = np.random.default_rng(cfg.seed)
    dims = {"text": cfg.d_text, "audio": cfg.d_audio}
    # Prototypes at pairwise distance ~ class_separation (noise has unit variance per dim).
    protos = {m: _unit_scaled(rng, 4, d, cfg.class_separation / np.sqrt(2)) for m, d in dims.items()}
    mood_dir = {m: _unit_scaled(rng, 1, d, cfg.mood_strength / 2)[0] for m, d in dims.items()}

    def speakers(prefix: str, count: int) -> dict[str, dict]:
        return {
            f"{prefix}{i:03d}": {
                "offset": {m: _unit_scaled(rng, 1, d, cfg.speaker_offset)[0] for m, d in dims.items()},
                "favourite": int(rng.integers(len(STATES))),
            }
            for i in range(count)
        }

    def dialogue(dialog_id: str, pool: dict[str, dict]) -> Dialogue:
        mood = "gloomy" if rng.random() < 0.5 else "calm"
        pair = rng.choice(list(pool), size=2, replace=False).tolist()
        n = int(rng.integers(cfg.min_turns, cfg.max_turns + 1))
        state: dict[str, int] = {}
        text, audio, labels, who = [], [], [], []
        speaker = pair[int(rng.integers(2))]
        for _ in range(n):
            spk = pool[speaker]
            prior = STATE_PRIOR[mood].copy()
            prior[spk["favourite"]] *= 1.0 + cfg.speaker_bias
            if speaker not in state or rng.random() > cfg.inertia:
                state[speaker] = int(rng.choice(len(STATES), p=prior / prior.sum()))
            s = STATES[state[speaker]]
            strength = cfg.weak_strength if rng.random() < cfg.weak_fraction else 1.0
            sign = 1.0 if mood == "gloomy" else -1.0
            feats = {}
            for m, d in dims.items():
                proto = protos[m][(TEXT_PROTO if m == "text" else AUDIO_PROTO)[s]]
                feats[m] = strength * proto + sign * mood_dir[m] + spk["offset"][m] + rng.standard_normal(d)
            label = ("sad" if mood == "gloomy" else "neu") if s == "low" else s
            text.append(feats["text"])
            audio.append(feats["audio"])
            labels.append(IGNORE if rng.random() < cfg.unlabelled_fraction else LABELS.index(label))
            who.append(speaker)
            if rng.random() < 0.8:  # mostly alternating turns, sometimes a speaker goes on
                speaker = pair[1 - pair.index(speaker)]
        frames = None
        if cfg.frames:  # each utterance's vector spread over a noisy sequence of frames
            frames = {
                m: [
                    (v + cfg.frame_noise * rng.standard_normal((int(rng.integers(2, cfg.frames + 1)), len(v)))).astype(
                        np.float32
                    )
                    for v in vecs
                ]
                for m, vecs in (("text", text), ("audio", audio))
            }
        return Dialogue(
            dialog_id=dialog_id,
            text=np.asarray(text, dtype=np.float32),
            audio=np.asarray(audio, dtype=np.float32),
            labels=np.asarray(labels, dtype=np.int64),
            speakers=who,
            utt_ids=[f"{dialog_id}_u{i:03d}" for i in range(n)],
            text_frames=frames["text"] if frames else None,
            audio_frames=frames["audio"] if frames else None,
        )

    train_pool = speakers("trainspk", cfg.train_speakers)
    test_pool = speakers("testspk", cfg.test_speakers)
    splits = {
        "train": [dialogue(f"syn_train_{i:04d}", train_pool) for i in range(cfg.train_dialogues)],
        "test": [dialogue(f"syn_test_{i:04d}", test_pool) for i in range(cfg.test_dialogues)],
    }
    return DataBundle(splits=splits, label_names=list(LABELS), source="synthetic data", dims=dims)
