"""Bad input to a trained run: always a one-line error naming the place, never a
traceback, never a silent non-finite answer (issue 18's first findings, each pinned)."""

from __future__ import annotations

import json
import socket

import pytest

from conftest import quick_run, write_corpus
from lpgnet import load_config, train
from lpgnet.cli import main
from lpgnet.errors import ConfigError, DataError
from lpgnet.serving.predict import Predictor


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-input")
    write_corpus(folder)
    return quick_run(folder)


def cli(args, capsys):
    code = main(args)
    return code, capsys.readouterr().err


@pytest.mark.parametrize("value", [1e30, 1e20, float("inf"), -1e7, 10**400])
def test_huge_or_infinite_features_are_refused_not_answered_with_nan(run, value):
    predictor = Predictor.from_run(run)
    utterance = {"tf": [0.1] * 6, "af": [value, 0.0, 0.0]}
    with pytest.raises(DataError, match=r"utterance 0: field 'af': value .* is not a usable feature"):
        predictor.predict([utterance, {"tf": [0.1] * 6, "af": [0.0] * 3}])


def test_nan_still_marks_a_missing_value(run):
    out = Predictor.from_run(run).predict([{"tf": [0.1] * 6, "af": [float("nan")] * 3}])
    assert out[0]["missing"] == ["audio"] and all(0.0 <= p <= 1.0 for p in out[0]["probs"].values())


def test_non_utf8_input_is_a_one_line_error_in_predict_and_train(run, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"dialog_id": "a", "turn": 0, "tf": [1, 2, 3, 4, 5, 6]}\n{"text": "caf\xe9"}\n')
    code, err = cli(["predict", "--run", str(run), "--input", str(bad)], capsys)
    assert code == 2 and err == f"error: {bad}:2: not UTF-8 text (byte 0xe9 at column 14); save the file as UTF-8\n"
    code, err = cli(
        [
            "train",
            "--set",
            "data.source=jsonl",
            "--set",
            f"data.path={bad}",
            "--set",
            "data.protocol=loso-1",
            "--set",
            "data.text_feature=tf",
            "--out",
            str(tmp_path / "r"),
        ],
        capsys,
    )
    assert code == 2 and err.splitlines()[-1].startswith(f"error: {bad}:2: not UTF-8 text")  # after the budget line
    csv_file = tmp_path / "bad.csv"
    csv_file.write_bytes(b"dialog_id,turn,text\na,0,ok\na,1,\xff\n")
    code, err = cli(["predict", "--run", str(run), "--input", str(csv_file)], capsys)
    assert code == 2 and err.startswith(f"error: {csv_file}:3: not UTF-8 text")


def test_an_existing_directory_as_out_is_refused_even_with_overwrite(run, tmp_path, capsys):
    conv = tmp_path / "conv.jsonl"
    conv.write_text(json.dumps({"dialog_id": "a", "turn": 0, "tf": [0.0] * 6, "af": [0.0] * 3}) + "\n")
    (tmp_path / "outdir").mkdir()
    code, err = cli(
        ["predict", "--run", str(run), "--input", str(conv), "--out", str(tmp_path / "outdir"), "--overwrite"], capsys
    )
    assert code == 2 and err == f"error: {tmp_path / 'outdir'}: is a directory; expected a file path to write\n"
    pytest.importorskip("onnxruntime")
    code, err = cli(["export", "--run", str(run), "--out", str(tmp_path / "outdir"), "--overwrite"], capsys)
    assert code == 2 and "is a directory; expected a file path" in err and err.count("\n") == 1


def test_raw_text_on_a_run_without_a_text_encoder_names_the_field_to_use(run, tmp_path):
    with pytest.raises(DataError) as info:
        Predictor.from_run(run).predict([{"text": "hello", "af": [0.0] * 3}])
    assert "came precomputed in field 'tf'" in str(info.value) and "vectors in field 'tf'" in str(info.value)
    quick = [
        "train.epochs=1",
        "train.progress=false",
        "model.d_model=16",
        "model.heads=2",
        "data.synthetic.train_dialogues=12",
        "data.synthetic.test_dialogues=4",
    ]
    train(load_config(None, quick), out_dir=tmp_path / "synthetic", log=lambda m: None)
    with pytest.raises(DataError) as info:
        Predictor.from_run(tmp_path / "synthetic").predict([{"text": "hello"}])
    message = str(info.value)
    assert "None" not in message and "give precomputed text vectors in field 'text_emb'" in message


def test_the_service_never_suggests_a_file_path(run):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from lpgnet.serving.serve import create_app

    client = TestClient(create_app(Predictor.from_run(run)))
    r = client.post("/predict", json={"utterances": [{"speaker": "A"}]})
    assert r.status_code == 422 and "no input at all" in r.json()["error"] and "audio_path" not in r.json()["error"]


def test_a_busy_port_is_refused_before_anything_is_announced(run, capsys):
    pytest.importorskip("uvicorn")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code, err = cli(["serve", "--run", str(run), "--port", str(port)], capsys)
    assert code == 2 and err.startswith(f"error: --host 127.0.0.1 --port {port}: cannot listen there")
    assert "serving" not in err
    with pytest.raises(ConfigError):
        from lpgnet.serving.serve import check_port

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            check_port("127.0.0.1", s.getsockname()[1])
