"""Reading audio files and turning utterances into audio embeddings.

The paper's audio modality is a fixed vector per utterance. This module makes such
vectors from waveforms with one of three kinds of encoder:

* ``egemaps``: openSMILE's eGeMAPSv02 functionals (88 hand-crafted acoustic statistics,
  no weights needed; the ``audio`` extra). With ``frames`` the 25 low-level descriptors
  every 10 ms instead.
* a Hugging Face wav2vec2 / HuBERT / WavLM checkpoint, by local folder or by a hub name
  already in the local cache (never downloaded, as for text encoders): the mean of one
  layer's hidden states over the utterance's frames (50 per second).
* ``emotion2vec:<model>`` through FunASR (the ``emotion2vec`` extra): its utterance
  embedding (768-d for the base models).

Every waveform is 16 kHz mono float32 (what :func:`load_audio` returns), cropped to
``max_seconds`` and, when shorter than 0.1 s, zero-padded to 0.1 s (openSMILE gives NaN
below 60 ms, wav2vec2 needs 25 ms for a single frame).

:meth:`AudioEncoder.spec` describes everything the vectors depend on (weights by
content hash, not path), for the feature cache (``lpgnet.features.cache``).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import ConfigError, DataError
from ..files import folder_sha256
from .cache import hub_cache_folder, local_model_folder

SAMPLE_RATE = 16000
MIN_SECONDS = 0.1  # shorter utterances are zero-padded to this (see the module docstring)
SPEC_VERSION = 1

# libsndfile reads these natively; anything else (mp4, m4a, mp3, webm, ...) goes through ffmpeg.
SOUNDFILE_SUFFIXES = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".au"})


# --------------------------------------------------------------------------- reading


def _resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling (anti-aliased), e.g. 8 kHz -> 16 kHz exactly doubles the length."""
    if rate == target:
        return wave
    from scipy.signal import resample_poly

    g = math.gcd(int(rate), int(target))
    return resample_poly(wave, target // g, rate // g).astype(np.float32)


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return data.mean(axis=1, dtype=np.float32), int(rate)


def run_ffmpeg(source: Path, args: list[str], failure: str = "ffmpeg cannot decode this file") -> bytes:
    """ffmpeg's standard output for ``-i source`` followed by ``args``; every failure a
    ``DataError`` naming the file (ffmpeg absent, cannot run, cannot decode, no audio)."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise DataError(
            f"{source}: reading {source.suffix or 'this'} files needs ffmpeg, which is not installed "
            "(install ffmpeg, or convert the audio to wav/flac)"
        )
    cmd = [exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", f"file:{source}", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, check=False)
    except OSError as exc:
        raise DataError(f"{source}: cannot run ffmpeg ({exc})") from None
    if proc.returncode != 0:
        why = " ".join(proc.stderr.decode(errors="replace").split())[-300:] or f"exit status {proc.returncode}"
        if "matches no streams" in why:
            why = "it has no audio stream"
        raise DataError(f"{source}: {failure} ({why})")
    return proc.stdout


def _read_ffmpeg(path: Path, sample_rate: int) -> np.ndarray:
    """The first audio stream of ``path`` decoded by ffmpeg to mono float32 at ``sample_rate``."""
    args = ["-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    return np.frombuffer(run_ffmpeg(path, args), dtype="<f4").astype(np.float32)


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The audio of ``path`` as mono float32 samples at ``sample_rate``.

    wav/flac/ogg/aiff are read with soundfile (channels averaged, then polyphase
    resampling); any other container goes through an ``ffmpeg`` subprocess, which
    downmixes and resamples itself. A .wav that soundfile cannot read is tried with
    ffmpeg when it is installed (a misnamed file). Every failure is a ``DataError``
    naming the file: missing, unreadable, ffmpeg absent, or no samples at all.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such audio file")
    if path.suffix.lower() in SOUNDFILE_SUFFIXES:
        import soundfile as sf

        try:
            wave, rate = _read_soundfile(path)
        except (sf.SoundFileError, RuntimeError, OSError, ValueError, TypeError) as exc:
            why = " ".join(str(exc).split())[:300]
            if shutil.which("ffmpeg") is None:
                raise DataError(f"{path}: cannot read this audio file ({why})") from None
            try:
                wave, rate = _read_ffmpeg(path, sample_rate), sample_rate
            except DataError as second:
                raise DataError(f"{path}: cannot read this audio file (soundfile: {why}; {second})") from None
    else:
        wave, rate = _read_ffmpeg(path, sample_rate), sample_rate
    if wave.size == 0:
        raise DataError(f"{path}: empty audio (no samples)")
    if not np.isfinite(wave).all():
        raise DataError(f"{path}: the audio holds NaN or infinite samples")
    return np.ascontiguousarray(_resample(wave, rate, sample_rate), dtype=np.float32)


# --------------------------------------------------------------------------- config


@dataclass
class AudioEncoderConfig:
    """Which encoder embeds each utterance's audio, and how."""

    encoder: str = "egemaps"  # "egemaps", an HF checkpoint folder / cached hub name, or "emotion2vec:<model>"
    layer: int | None = (
        None  # HF models: hidden layer 0..n (0 = transformer input; negative from the end); null = last (n)
    )
    pooling: Literal["mean"] = "mean"  # over the utterance's frames (padding excluded)
    max_seconds: float = 30.0  # longer utterances are cropped to their first max_seconds
    batch_size: int = 8
    frames: bool = False  # return the T×d frame sequence instead of its mean
    max_frames: int = 512  # frames kept (the first ones) when ``frames``; ~10 s at 50 frames/s
    device: str = "cpu"  # "cpu", "cuda", "cuda:1", ... (HF and emotion2vec models)

    def validate(self, where: str) -> None:
        if not isinstance(self.encoder, str) or not self.encoder.strip():
            raise ConfigError(
                f"{where}.encoder: expected 'egemaps', a model folder, a cached hub name or 'emotion2vec:<model>'"
            )
        if self.pooling != "mean":
            raise ConfigError(f"{where}.pooling: expected 'mean', got {self.pooling!r}")
        if not self.max_seconds > 0:
            raise ConfigError(f"{where}.max_seconds: expected a positive number, got {self.max_seconds}")
        if self.max_seconds < MIN_SECONDS:
            raise ConfigError(f"{where}.max_seconds: expected at least {MIN_SECONDS}, got {self.max_seconds}")
        for name in ("batch_size", "max_frames"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{where}.{name}: expected a positive integer, got {getattr(self, name)}")
        if self.layer is not None and (_kind(self.encoder) != "huggingface"):
            raise ConfigError(
                f"{where}.layer: only Hugging Face models have selectable layers; use null with {self.encoder!r}"
            )
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ConfigError(f"{where}.device: expected 'cpu', 'cuda' or 'cuda:N', got {self.device!r}") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"{where}.device: {self.device!r}, but torch sees no CUDA device here (use 'cpu')")


def _kind(encoder: str) -> str:
    if encoder == "egemaps":
        return "egemaps"
    if encoder.startswith("emotion2vec:"):
        return "emotion2vec"
    return "huggingface"


# --------------------------------------------------------------------------- resolving weights


def resolve_audio_encoder(name: str) -> Path:
    """A local Hugging Face checkpoint folder for ``name``; never downloads (as text.resolve_encoder)."""
    return local_model_folder(name, "audio encoder", hint="not 'egemaps', not 'emotion2vec:<model>', ")


def resolve_emotion2vec(source: str) -> Path:
    """A local emotion2vec folder: ``source`` itself, or a ModelScope / Hugging Face cache entry.

    FunASR would download a ModelScope id that is not cached; this looks in the caches
    first so that nothing is ever downloaded.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    roots = [Path(os.environ["MODELSCOPE_CACHE"])] if os.environ.get("MODELSCOPE_CACHE") else []
    roots.append(Path.home() / ".cache" / "modelscope" / "hub")
    names = dict.fromkeys([source, source.replace(".", "___")])  # modelscope stores "." as "___"
    for root in roots:
        for name in names:
            for candidate in (root / "models" / name, root / name):
                if candidate.is_dir():
                    return candidate
    found = hub_cache_folder(source)
    if found is None:
        raise ConfigError(
            f"emotion2vec model {source!r}: not a local folder and not in the ModelScope or Hugging Face cache "
            "(weights are never downloaded at run time: give a folder path)"
        )
    return found


# --------------------------------------------------------------------------- encoder


class AudioEncoder:
    """One encoder, loaded once (eval mode, no gradients), turning waveforms into vectors.

    ``encode(waves)`` gives one float32 vector of size ``dim`` per 16 kHz waveform, or
    with ``frames`` a ``T×dim`` array (T <= max_frames). Batching never changes a
    result: a batch is padded, and only the real frames are pooled, for models whose
    features do not see the padding; models whose first convolution is followed by
    GroupNorm over time (wav2vec2-base, HuBERT-base, WavLM-base: the padding would
    shift every frame's normalisation) are batched only with utterances of exactly the
    same length.
    """

    def __init__(self, config: AudioEncoderConfig):
        config.validate("audio_encoder")
        self.config = config
        self.kind = _kind(config.encoder)
        self.device = torch.device(config.device)
        self.path: Path | None = None
        self._sample_rate = SAMPLE_RATE
        if self.kind == "egemaps":
            self._load_egemaps()
        elif self.kind == "emotion2vec":
            self._load_emotion2vec(config.encoder.split(":", 1)[1])
        else:
            self._load_huggingface(config.encoder)

    # ---------------------------------------------------------------- loading

    def _load_egemaps(self) -> None:
        try:
            import opensmile
        except ImportError:
            raise ConfigError(
                "audio encoder 'egemaps' needs openSMILE: pip install 'lpgnet[audio]' (or opensmile)"
            ) from None
        level = opensmile.FeatureLevel.LowLevelDescriptors if self.config.frames else opensmile.FeatureLevel.Functionals
        self._smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=level)
        self.dim = len(self._smile.feature_names)  # 88 functionals, 25 LLDs
        self._identity: dict[str, Any] = {
            "kind": "egemaps",
            "feature_set": "eGeMAPSv02",
            "level": "lld" if self.config.frames else "functionals",
            "opensmile": getattr(opensmile, "__version__", "?"),  # the feature definition ships with the package
        }

    def _load_huggingface(self, name: str) -> None:
        path = resolve_audio_encoder(name)
        from transformers import AutoFeatureExtractor, AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            extractor = AutoFeatureExtractor.from_pretrained(str(path))
            model = AutoModel.from_pretrained(str(path))
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"{path}: cannot load an audio encoder from this folder ({exc.__class__.__name__}: {str(exc)[:200]})"
            ) from None
        if not hasattr(model, "_get_feat_extract_output_lengths") or "input_values" not in getattr(
            extractor, "model_input_names", []
        ):
            raise ConfigError(
                f"{path}: a {model.config.model_type} model, not a wav2vec2-style speech encoder "
                "(wav2vec2, HuBERT, WavLM, data2vec-audio)"
            )
        n = model.config.num_hidden_layers
        layer = self.config.layer
        if layer is not None and not -(n + 1) <= layer <= n:
            raise ConfigError(
                f"audio_encoder.layer: {layer} is out of range for a model with {n} layers "
                f"(0..{n}, or -{n + 1}..-1 from the end)"
            )
        self.path = path
        self._model = model.float().eval().to(self.device)  # half-precision checkpoints run in float32
        self._extractor = extractor
        self._sample_rate = int(getattr(extractor, "sampling_rate", SAMPLE_RATE) or SAMPLE_RATE)
        # Layer n is the last hidden state *with* the final LayerNorm of stable-layer-norm models
        # (wav2vec2-large-lv60, WavLM-large), as transformers 4 returned it; transformers 5's
        # hidden_states[n] is before that norm, so it is not used for n.
        self._layer = None if layer is None or layer % (n + 1) == n else layer % (n + 1)
        self._equal_lengths_only = getattr(model.config, "feat_extract_norm", "layer") == "group"
        self.dim = int(model.config.hidden_size)
        self._identity = {
            "kind": "huggingface",
            "model_type": model.config.model_type,
            "encoder_sha256": folder_sha256(path),
            "layer": n if self._layer is None else self._layer,  # None, n and -1 are the same states
        }

    def _load_emotion2vec(self, source: str) -> None:
        try:
            from funasr import AutoModel as FunASRModel
        except ImportError:
            raise ConfigError(
                "audio encoder 'emotion2vec:...' needs FunASR: pip install 'lpgnet[emotion2vec]' (or funasr)"
            ) from None
        path = resolve_emotion2vec(source)
        threads = torch.get_num_threads()  # FunASR sets its own thread count (ncpu) otherwise
        try:
            self._funasr = FunASRModel(
                model=str(path),
                device=str(self.device),
                ncpu=threads,
                disable_update=True,
                disable_pbar=True,
                log_level="ERROR",
            )
        except Exception as exc:  # FunASR raises assorted errors (AssertionError for an unknown model)
            raise ConfigError(
                f"{path}: FunASR cannot load an emotion2vec model from this folder "
                f"({exc.__class__.__name__}: {str(exc)[:200]})"
            ) from None
        finally:
            torch.set_num_threads(threads)
        self.path = path
        self._identity = {"kind": "emotion2vec", "encoder_sha256": folder_sha256(path)}
        # The size depends on the checkpoint (768 base, 1024 large): ask the model.
        probe = self._encode_emotion2vec([np.zeros(SAMPLE_RATE, np.float32)])[0]
        self.dim = int(probe.shape[-1])

    # ---------------------------------------------------------------- public

    def spec(self) -> dict[str, Any]:
        """A JSON-able description of everything the vectors depend on (for cache keys).

        Weights are identified by a hash of the folder's files, not its path: the same
        checkpoint elsewhere gives the same key, a changed one another.
        """
        cfg = self.config
        out = {
            "version": SPEC_VERSION,
            "encoder": dict(self._identity),
            "sample_rate": SAMPLE_RATE,
            "max_seconds": float(cfg.max_seconds),
            "min_seconds": MIN_SECONDS,
            "frames": cfg.frames,
        }
        if cfg.frames:
            out["max_frames"] = cfg.max_frames
        else:
            out["pooling"] = cfg.pooling
        return out

    @torch.no_grad()
    def encode(self, waves: list[np.ndarray], desc: str = "audio features") -> list[np.ndarray]:
        """One float32 vector (or T×dim array with ``frames``) per 16 kHz mono waveform, in input order."""
        prepared = [self._prepare(w, i) for i, w in enumerate(waves)]
        if not prepared:
            return []
        if self.kind == "egemaps":
            return [
                self._encode_egemaps(w) for w in tqdm(prepared, desc=desc, leave=False, file=sys.stderr, disable=None)
            ]
        if self.kind == "emotion2vec":
            out: list[np.ndarray] = []
            for start in tqdm(
                range(0, len(prepared), self.config.batch_size), desc=desc, leave=False, file=sys.stderr, disable=None
            ):
                out.extend(self._encode_emotion2vec(prepared[start : start + self.config.batch_size]))
            return out
        return self._encode_huggingface(prepared, desc)

    # ---------------------------------------------------------------- internals

    def _prepare(self, wave: np.ndarray, index: int) -> np.ndarray:
        """Checked, cropped, minimally padded float32 at the model's rate."""
        wave = np.asarray(wave)
        if wave.ndim != 1:
            raise DataError(f"audio {index}: expected a 1-D mono waveform, got shape {wave.shape}")
        if wave.size == 0:
            raise DataError(f"audio {index}: empty audio (no samples)")
        if not np.isfinite(wave).all():
            raise DataError(f"audio {index}: the waveform holds NaN or infinite samples")
        wave = wave[: int(round(self.config.max_seconds * SAMPLE_RATE))].astype(np.float32, copy=False)
        shortest = int(round(MIN_SECONDS * SAMPLE_RATE))
        if wave.size < shortest:
            wave = np.pad(wave, (0, shortest - wave.size))
        return np.ascontiguousarray(_resample(wave, SAMPLE_RATE, self._sample_rate))

    def _cap(self, frames: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(frames[: self.config.max_frames], dtype=np.float32)

    def _encode_egemaps(self, wave: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Segment too short": cannot happen after padding
            values = self._smile.process_signal(wave, SAMPLE_RATE).to_numpy(np.float32)
        if not np.isfinite(values).all():
            raise DataError("openSMILE returned NaN for an utterance (audio too short?)")
        return self._cap(values) if self.config.frames else values[0]

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Indices in length order, ``batch_size`` at a time (equal lengths only for GroupNorm models)."""
        batches: list[list[int]] = []
        for i in np.argsort(lengths, kind="stable").tolist():
            last = batches[-1] if batches else None
            if (
                last is None
                or len(last) >= self.config.batch_size
                or (self._equal_lengths_only and lengths[last[0]] != lengths[i])
            ):
                batches.append([i])
            else:
                last.append(i)
        return batches

    def _encode_huggingface(self, waves: list[np.ndarray], desc: str) -> list[np.ndarray]:
        out: list[np.ndarray] = [np.empty(0, np.float32)] * len(waves)
        for idx in tqdm(self._batches([len(w) for w in waves]), desc=desc, leave=False, file=sys.stderr, disable=None):
            inputs = self._extractor(
                [waves[i] for i in idx],
                sampling_rate=self._sample_rate,
                padding=True,
                return_attention_mask=True,
                return_tensors="pt",
            )
            values, mask = inputs["input_values"].to(self.device), inputs["attention_mask"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # WavLM: torch's mask-type deprecation notice
                result = self._model(
                    values,
                    attention_mask=None if self._equal_lengths_only else mask.to(self.device),
                    output_hidden_states=self._layer is not None,
                )
            hidden = result.last_hidden_state if self._layer is None else result.hidden_states[self._layer]
            hidden = hidden.float().cpu()
            valid = self._model._get_feat_extract_output_lengths(mask.sum(1)).tolist()
            for row, i in enumerate(idx):
                frames = hidden[row, : max(1, int(valid[row]))]
                out[i] = self._cap(frames.numpy()) if self.config.frames else frames.mean(0).numpy().astype(np.float32)
        return out

    def _encode_emotion2vec(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """FunASR's ``generate`` on a list of arrays: one dict per input with ``feats``.

        ``granularity='utterance'`` averages the frames inside FunASR (each input is run
        alone, so there is no padding); ``'frame'`` returns them (T×d, 50 per second).
        """
        threads = torch.get_num_threads()
        try:
            results = self._funasr.generate(
                list(waves),
                granularity="frame" if self.config.frames else "utterance",
                extract_embedding=True,
                output_dir=None,
                disable_pbar=True,
            )
        finally:
            torch.set_num_threads(threads)
        if len(results) != len(waves) or any("feats" not in r for r in results):
            raise DataError(
                f"emotion2vec: FunASR returned {len(results)} results without embeddings for {len(waves)} utterances"
            )
        feats = [np.asarray(r["feats"], dtype=np.float32) for r in results]
        return [self._cap(f) if self.config.frames else f.reshape(-1) for f in feats]
