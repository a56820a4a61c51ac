"""Audio reading and utterance-level audio embeddings. Audio is generated here (tones,
noise, espeak-ng speech when installed); tiny randomly initialised wav2vec2 / HuBERT
checkpoints saved to a folder stand in for the real ones (same code path, no download)."""

from __future__ import annotations

import importlib
import json
import shutil
import socket
import subprocess
import sys
import types

import numpy as np
import pytest
import soundfile as sf
import torch

from lpgnet import ConfigError, DataError
from lpgnet.config import from_dict
from lpgnet.features.audio import AudioEncoder, AudioEncoderConfig, load_audio
from lpgnet.files import folder_sha256

transformers = pytest.importorskip("transformers")
torch.set_num_threads(1)

SR = 16000
HAVE_FFMPEG = shutil.which("ffmpeg") is not None
needs_ffmpeg = pytest.mark.skipif(not HAVE_FFMPEG, reason="ffmpeg is not installed (needed to decode mp4/m4a)")


def importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


HAVE_OPENSMILE = importable("opensmile")
needs_opensmile = pytest.mark.skipif(
    not HAVE_OPENSMILE, reason="opensmile is not installed (pip install 'lpgnet[audio]')"
)


def tone(seconds: float, freq: float = 220.0, rate: int = SR, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def peak_hz(wave: np.ndarray, rate: int = SR) -> float:
    spectrum = np.abs(np.fft.rfft(wave))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


# --------------------------------------------------------------------------- load_audio


def test_wav_at_8khz_is_resampled_to_16khz(tmp_path):
    sf.write(tmp_path / "a.wav", tone(0.5, 440, rate=8000), 8000)
    wave = load_audio(tmp_path / "a.wav")
    assert wave.dtype == np.float32 and wave.ndim == 1 and len(wave) == 8000
    assert abs(peak_hz(wave) - 440) < 5


def test_stereo_is_averaged_to_mono(tmp_path):
    left = tone(0.25, 300)
    sf.write(tmp_path / "s.flac", np.stack([left, np.zeros_like(left)], axis=1), SR)
    wave = load_audio(tmp_path / "s.flac")
    assert wave.shape == left.shape
    np.testing.assert_allclose(wave, left / 2, atol=1e-4)  # 16-bit FLAC quantisation


@needs_ffmpeg
@pytest.mark.parametrize("suffix,codec", [(".mp4", "aac"), (".m4a", "aac")])
def test_mp4_and_m4a_are_decoded_through_ffmpeg(tmp_path, suffix, codec):
    path = tmp_path / f"tone{suffix}"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100:duration=1",
            "-ac",
            "2",
            "-c:a",
            codec,
            str(path),
        ],
        check=True,
    )
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - SR) < 2048  # AAC priming / frame padding
    assert abs(peak_hz(wave) - 440) < 5


def test_a_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="nope.wav: no such audio file"):
        load_audio(tmp_path / "nope.wav")


def test_a_corrupt_or_zero_byte_file_is_a_data_error_naming_it(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    with pytest.raises(DataError, match="bad.wav: cannot read this audio file"):
        load_audio(tmp_path / "bad.wav")
    (tmp_path / "zero.flac").write_bytes(b"")
    with pytest.raises(DataError, match="zero.flac: cannot read"):
        load_audio(tmp_path / "zero.flac")


@needs_ffmpeg
def test_a_corrupt_mp4_is_a_data_error_naming_it(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"\x00\x01not a movie" * 50)
    with pytest.raises(DataError, match="bad.mp4: ffmpeg cannot decode"):
        load_audio(tmp_path / "bad.mp4")


def test_an_empty_file_is_a_data_error(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), SR)
    with pytest.raises(DataError, match="empty.wav: empty audio"):
        load_audio(tmp_path / "empty.wav")


def test_mp4_without_ffmpeg_is_a_clear_data_error(tmp_path, monkeypatch):
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 64)
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(DataError, match=r"clip.mp4: reading .mp4 files needs ffmpeg, which is not installed"):
        load_audio(tmp_path / "clip.mp4")
    (tmp_path / "bad.wav").write_bytes(b"garbage" * 10)  # no ffmpeg fallback either: still a DataError
    with pytest.raises(DataError, match="bad.wav: cannot read"):
        load_audio(tmp_path / "bad.wav")


# --------------------------------------------------------------------------- config


def test_config_rules_and_the_config_loader():
    cfg = from_dict(AudioEncoderConfig, {"encoder": "egemaps", "max_seconds": 10, "frames": True}, "test")
    assert cfg.max_seconds == 10.0 and cfg.frames and cfg.max_frames == 512 and cfg.layer is None
    with pytest.raises(ConfigError, match="pooling"):
        from_dict(AudioEncoderConfig, {"pooling": "max"}, "test")
    for bad, match in [
        (dict(layer=3), "layer: only Hugging Face"),
        (dict(batch_size=0), "batch_size"),
        (dict(max_seconds=0), "max_seconds"),
        (dict(max_frames=0), "max_frames"),
        (dict(device="gpu"), "device"),
    ]:
        with pytest.raises(ConfigError, match=match):
            AudioEncoderConfig(**bad).validate("audio_encoder")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            AudioEncoderConfig(device="cuda").validate("audio_encoder")


# --------------------------------------------------------------------------- egemaps


@needs_opensmile
def test_egemaps_gives_88_finite_functionals():
    enc = AudioEncoder(AudioEncoderConfig("egemaps"))
    assert enc.dim == 88
    vectors = enc.encode([tone(1.0), noise(0.7), tone(0.02)])  # 20 ms: zero-padded, not NaN
    assert all(v.shape == (88,) and v.dtype == np.float32 and np.isfinite(v).all() for v in vectors)
    assert not np.allclose(vectors[0], vectors[1])
    spec = enc.spec()
    assert spec["encoder"]["kind"] == "egemaps" and json.loads(json.dumps(spec)) == spec


@needs_opensmile
def test_egemaps_frames_are_the_low_level_descriptors_capped():
    enc = AudioEncoder(AudioEncoderConfig("egemaps", frames=True, max_frames=50))
    assert enc.dim == 25
    short, long = enc.encode([tone(0.3), noise(2.0)])
    assert short.shape[1] == long.shape[1] == 25 and np.isfinite(short).all()
    assert 20 <= short.shape[0] <= 30  # 10 ms hop
    assert long.shape[0] == 50
    assert enc.spec() != AudioEncoder(AudioEncoderConfig("egemaps")).spec()


def test_egemaps_without_opensmile_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "opensmile", None)
    with pytest.raises(ConfigError, match=r"lpgnet\[audio\]"):
        AudioEncoder(AudioEncoderConfig("egemaps"))


# --------------------------------------------------------------------------- Hugging Face models

TINY = dict(
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    conv_dim=(8, 8),
    conv_stride=(5, 4),
    conv_kernel=(10, 8),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
)


def save_tiny(folder, config) -> None:
    torch.manual_seed(0)
    transformers.AutoModel.from_config(config).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=SR, padding_value=0.0, do_normalize=True, return_attention_mask=True
    ).save_pretrained(folder)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """wav2vec2 with LayerNorm convolutions (like wav2vec2-large-lv60: padded batches) and
    HuBERT with GroupNorm (like hubert-base: equal-length batches only)."""
    folders = {}
    for name, config in [
        ("wav2vec2", transformers.Wav2Vec2Config(feat_extract_norm="layer", do_stable_layer_norm=True, **TINY)),
        ("hubert", transformers.HubertConfig(**TINY)),
    ]:
        folders[name] = tmp_path_factory.mktemp(f"tiny-{name}")
        save_tiny(folders[name], config)
    return folders


@pytest.mark.parametrize("name", ["wav2vec2", "hubert"])
def test_a_tiny_checkpoint_loads_by_path_with_its_dim(tiny_models, name):
    enc = AudioEncoder(AudioEncoderConfig(str(tiny_models[name])))
    assert enc.dim == 16 and not enc._model.training
    vectors = enc.encode([tone(0.5), noise(0.3)])
    assert [v.shape for v in vectors] == [(16,), (16,)]
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in vectors)
    spec = enc.spec()
    assert spec["encoder"]["encoder_sha256"] == folder_sha256(tiny_models[name])
    assert spec["encoder"]["model_type"] == name and json.loads(json.dumps(spec)) == spec
    assert str(tiny_models[name]) not in json.dumps(spec)  # content, not location


def test_layer_picks_a_hidden_layer(tiny_models):
    folder = str(tiny_models["wav2vec2"])
    wave = noise(0.4)
    last = AudioEncoder(AudioEncoderConfig(folder)).encode([wave])[0]
    first = AudioEncoder(AudioEncoderConfig(folder, layer=1))
    assert not np.allclose(first.encode([wave])[0], last)
    np.testing.assert_allclose(AudioEncoder(AudioEncoderConfig(folder, layer=-1)).encode([wave])[0], last, atol=1e-6)
    # the same as the model's own hidden state 1, averaged over frames
    x = first._extractor([wave], sampling_rate=SR, return_tensors="pt")
    with torch.no_grad():
        direct = first._model(x.input_values, output_hidden_states=True).hidden_states[1][0].mean(0).numpy()
    np.testing.assert_allclose(first.encode([wave])[0], direct, atol=1e-5)
    assert first.spec() != AudioEncoder(AudioEncoderConfig(folder)).spec()
    with pytest.raises(ConfigError, match="layer: 5 is out of range"):
        AudioEncoder(AudioEncoderConfig(folder, layer=5))


@pytest.mark.parametrize("name,calls", [("wav2vec2", 1), ("hubert", 2)])
def test_padding_in_a_batch_does_not_change_an_embedding(tiny_models, monkeypatch, name, calls):
    enc = AudioEncoder(AudioEncoderConfig(str(tiny_models[name]), batch_size=4))
    short, long = noise(0.3, seed=1), tone(0.9, 180) + noise(0.9, seed=2)
    alone = enc.encode([short])[0]
    forwards = []
    real = enc._model.forward
    monkeypatch.setattr(enc._model, "forward", lambda *a, **k: forwards.append(1) or real(*a, **k))
    batched = enc.encode([long, short])
    assert len(forwards) == calls  # GroupNorm models never see padding: one call per length
    np.testing.assert_allclose(batched[1], alone, atol=1e-5)
    np.testing.assert_allclose(batched[0], enc.encode([long])[0], atol=1e-5)
    forwards.clear()
    enc.encode([noise(0.3, seed=3), noise(0.3, seed=4)])
    assert len(forwards) == 1  # equal lengths batch together everywhere


@pytest.mark.parametrize("name", ["wav2vec2", "hubert"])
def test_frames_give_t_by_d_capped(tiny_models, name):
    enc = AudioEncoder(AudioEncoderConfig(str(tiny_models[name]), frames=True, max_frames=100, batch_size=2))
    short, long = enc.encode([tone(0.05), noise(1.0)])  # 50 ms is padded to 100 ms: 1600 samples -> 79 frames
    expected = int(enc._model._get_feat_extract_output_lengths(torch.tensor(1600)))
    assert short.shape == (expected, 16) and expected < 100
    assert long.shape == (100, 16) and np.isfinite(long).all()
    pooled = AudioEncoder(AudioEncoderConfig(str(tiny_models[name]))).encode([tone(0.05)])[0]
    np.testing.assert_allclose(short.mean(0), pooled, atol=1e-5)


def test_encode_checks_its_input(tiny_models):
    enc = AudioEncoder(AudioEncoderConfig(str(tiny_models["wav2vec2"])))
    assert enc.encode([]) == []
    for wave, match in [
        (np.zeros((1600, 2)), "1-D"),
        (np.zeros(0), "empty audio"),
        (np.array([0.1, np.nan] * 800), "NaN"),
    ]:
        with pytest.raises(DataError, match=f"audio 1: .*{match}"):
            enc.encode([tone(0.2), wave])


def test_long_utterances_are_cropped_to_max_seconds(tiny_models):
    enc = AudioEncoder(AudioEncoderConfig(str(tiny_models["wav2vec2"]), max_seconds=0.5))
    wave = noise(1.2)
    np.testing.assert_allclose(enc.encode([wave])[0], enc.encode([wave[:8000]])[0], atol=1e-6)
    assert enc.spec()["max_seconds"] == 0.5


def test_unknown_encoders_are_clear_errors_without_network(tmp_path, monkeypatch):
    def no_network(*a, **k):
        raise AssertionError("tried the network")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(ConfigError, match="never downloaded"):
        AudioEncoder(AudioEncoderConfig("no-such-org/no-such-speech-model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no config.json"):
        AudioEncoder(AudioEncoderConfig(str(tmp_path / "empty")))
    bert = tmp_path / "bert"
    transformers.BertModel(
        transformers.BertConfig(
            vocab_size=8, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8
        )
    ).save_pretrained(bert)
    with pytest.raises(ConfigError, match="bert"):
        AudioEncoder(AudioEncoderConfig(str(bert)))


# --------------------------------------------------------------------------- speech


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (synthesises test speech)")
def test_synthetic_speech_end_to_end(tmp_path, tiny_models):
    path = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "I am so happy to see you again today"], check=True)
    info = sf.info(str(path))
    wave = load_audio(path)
    assert abs(len(wave) - info.duration * SR) <= 2
    vector = AudioEncoder(AudioEncoderConfig(str(tiny_models["hubert"]))).encode([wave])[0]
    assert vector.shape == (16,) and np.isfinite(vector).all()
    if HAVE_OPENSMILE:
        enc = AudioEncoder(AudioEncoderConfig("egemaps"))
        features = dict(zip(enc._smile.feature_names, enc.encode([wave])[0]))
        assert features["F0semitoneFrom27.5Hz_sma3nz_amean"] > 10  # voiced: a pitch was found
        assert features["VoicedSegmentsPerSec"] > 0


# --------------------------------------------------------------------------- emotion2vec


def test_emotion2vec_without_funasr_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "funasr", None)
    with pytest.raises(ConfigError, match=r"lpgnet\[emotion2vec\]"):
        AudioEncoder(AudioEncoderConfig("emotion2vec:iic/emotion2vec_base"))


class FakeFunASR:
    """FunASR's AutoModel as its emotion2vec code documents it: ``generate`` takes a list
    of 16 kHz arrays and returns one dict per array, ``feats`` (768,) for granularity
    'utterance' and (T, 768) at 50 frames/s for 'frame'."""

    made: list[dict] = []
    calls: list[dict] = []

    def __init__(self, **kwargs):
        FakeFunASR.made.append(kwargs)

    def generate(self, input, **kwargs):
        FakeFunASR.calls.append(kwargs)
        out = []
        for wave in input:
            frames = np.tile(np.float32(wave.mean()), (len(wave) // 320, 768))
            feats = frames if kwargs["granularity"] == "frame" else frames.mean(0)
            out.append({"key": "rand_key_x", "labels": [], "scores": [], "feats": feats})
        return out


def test_emotion2vec_through_the_funasr_api(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "funasr", types.SimpleNamespace(AutoModel=FakeFunASR))
    folder = tmp_path / "emotion2vec_base"
    folder.mkdir()
    (folder / "model.pt").write_bytes(b"weights")
    FakeFunASR.made.clear(), FakeFunASR.calls.clear()
    threads = torch.get_num_threads()
    enc = AudioEncoder(AudioEncoderConfig(f"emotion2vec:{folder}", batch_size=2))
    assert enc.dim == 768 and torch.get_num_threads() == threads
    assert FakeFunASR.made[0]["model"] == str(folder) and FakeFunASR.made[0]["disable_update"] is True
    vectors = enc.encode([tone(0.5), noise(0.2), tone(1.0) + 1.0])
    assert [v.shape for v in vectors] == [(768,)] * 3 and vectors[2][0] == pytest.approx(1.0, abs=1e-3)
    assert all(c["granularity"] == "utterance" and c["extract_embedding"] is True for c in FakeFunASR.calls)
    assert enc.spec()["encoder"] == {"kind": "emotion2vec", "encoder_sha256": folder_sha256(folder)}
    frames = AudioEncoder(AudioEncoderConfig(f"emotion2vec:{folder}", frames=True, max_frames=30)).encode(
        [noise(2.0), tone(0.2)]
    )
    assert frames[0].shape == (30, 768) and frames[1].shape == (10, 768)
    assert FakeFunASR.calls[-1]["granularity"] == "frame"


def test_emotion2vec_model_not_cached_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "funasr", types.SimpleNamespace(AutoModel=FakeFunASR))
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path))
    monkeypatch.setattr(socket.socket, "connect", lambda *a, **k: pytest.fail("tried the network"))
    with pytest.raises(ConfigError, match="never downloaded"):
        AudioEncoder(AudioEncoderConfig("emotion2vec:iic/no_such_emotion2vec"))
    (tmp_path / "models" / "iic" / "emotion2vec_cached").mkdir(parents=True)
    assert (
        AudioEncoder(AudioEncoderConfig("emotion2vec:iic/emotion2vec_cached")).path
        == tmp_path / "models" / "iic" / "emotion2vec_cached"
    )


def test_real_emotion2vec_when_available():
    pytest.importorskip("funasr", reason="funasr is not installed (pip install 'lpgnet[emotion2vec]')")
    import os

    model = os.environ.get("LPGNET_EMOTION2VEC_MODEL")
    if not model:
        pytest.skip("set LPGNET_EMOTION2VEC_MODEL to a local emotion2vec folder to test the real model")
    enc = AudioEncoder(AudioEncoderConfig(f"emotion2vec:{model}"))
    vectors = enc.encode([tone(1.0), noise(0.5)])
    assert enc.dim in (768, 1024) and all(v.shape == (enc.dim,) and np.isfinite(v).all() for v in vectors)
