"""``lpgnet serve``: the HTTP service answers like the Predictor, bounds its requests and
turns every bad request into a 4xx that says what is wrong -- never a stack trace."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import quick_run, write_corpus
from lpgnet.serving.predict import Predictor

fastapi = pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from lpgnet.serving.serve import create_app  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    rows = write_corpus(tmp)
    predictor = Predictor.from_run(quick_run(tmp))
    client = TestClient(
        create_app(predictor, max_body_bytes=20_000, max_utterances=8, max_sessions=2), raise_server_exceptions=False
    )
    dialogue = [{k: r[k] for k in ("utt_id", "tf", "af")} for r in rows if r["dialog_id"] == "d14"]
    return client, predictor, dialogue


def test_health_and_whole_conversation(setup):
    client, predictor, dialogue = setup
    health = client.get("/health").json()
    assert health["labels"] == predictor.labels and health["fields"] == {"text": "tf", "audio": "af"}
    r = client.post("/predict", json={"utterances": dialogue})
    assert r.status_code == 200
    got = r.json()["predictions"]
    want = predictor.predict(dialogue)
    assert [g["label"] for g in got] == [w["label"] for w in want]
    np.testing.assert_allclose(
        [list(g["probs"].values()) for g in got], [list(w["probs"].values()) for w in want], atol=1e-6
    )


def test_incremental_sessions(setup):
    client, predictor, dialogue = setup
    sid = client.post("/sessions").json()["session_id"]
    streamed = [client.post(f"/sessions/{sid}/utterances", json=u).json() for u in dialogue]
    session = predictor.stream()
    for s, u in zip(streamed, dialogue):
        np.testing.assert_allclose(list(s["probs"].values()), list(session.add(u)["probs"].values()), atol=1e-6)
    bad = client.post(f"/sessions/{sid}/utterances", json={"tf": [1.0]})
    assert bad.status_code == 422 and "field 'tf'" in bad.json()["error"]
    assert client.delete(f"/sessions/{sid}").status_code == 200
    assert client.post(f"/sessions/{sid}/utterances", json=dialogue[0]).status_code == 404
    ids = [client.post("/sessions").json()["session_id"] for _ in range(3)]  # max_sessions=2: the oldest goes
    assert client.post(f"/sessions/{ids[0]}/utterances", json=dialogue[0]).status_code == 404
    assert client.post(f"/sessions/{ids[2]}/utterances", json=dialogue[0]).status_code == 200


@pytest.mark.parametrize(
    "body,status,says",
    [
        (b"{not json", 422, "JSON"),
        ({"utterances": []}, 422, "utterances"),
        ({"conversation": []}, 422, "utterances"),
        (
            {"utterances": [{"tf": [0.0] * 6, "af": [0.0] * 2}]},
            422,
            "expected a list of 3 numbers (the run's audio feature size), got a list of 2",
        ),
        ({"utterances": [{"speaker": "A"}]}, 422, "no input at all"),
        ({"utterances": [{"audio_path": "/etc/passwd"}]}, 422, "audio_path: not accepted"),
        ({"utterances": [{"tf": [0.0] * 6}] * 9}, 413, "utterances"),
        ({"utterances": [{"tf": [0.0] * 6, "pad": "x" * 30_000}]}, 413, "over 20000 bytes"),
    ],
)
def test_bad_requests_get_a_4xx_that_says_why(setup, body, status, says):
    client = setup[0]
    r = (
        client.post("/predict", content=body, headers={"content-type": "application/json"})
        if isinstance(body, bytes)
        else client.post("/predict", json=body)
    )
    assert r.status_code == status, r.text
    assert says in r.json()["error"] and "Traceback" not in r.text


def test_an_internal_error_is_a_plain_500(setup, monkeypatch):
    client, predictor, dialogue = setup
    monkeypatch.setattr(predictor, "predict", lambda *a, **k: 1 / 0)
    r = client.post("/predict", json={"utterances": dialogue})
    assert r.status_code == 500 and r.json() == {"error": "internal error (logged on the server)"}
