"""A service of several worker processes: sessions live in a shared SQLite store, so any
worker can answer a session's next utterance with the same prediction; a racing write is
a conflict, not a lost utterance; live calls (audio buffers in one process) say they need
one worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import quick_run, write_corpus
from lpgnet.serving.predict import Predictor

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from lpgnet.serving.serve import create_app  # noqa: E402
from lpgnet.serving.store import Conflict, SqliteStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("workers")
    rows = write_corpus(root)
    return root, quick_run(root), [r for r in rows if r["dialog_id"] == "d14"]


def _expected(run, dialogue):
    session = Predictor.from_run(run).stream()
    return [session.add(u) for u in dialogue]


def test_two_apps_sharing_a_store_continue_each_others_sessions(served, tmp_path):
    _, run, dialogue = served
    store = tmp_path / "sessions.sqlite"
    apps = [TestClient(create_app(Predictor.from_run(run), session_store=SqliteStore(store, 10))) for _ in range(2)]
    sid = apps[0].post("/sessions").json()["session_id"]
    answers = [apps[i % 2].post(f"/sessions/{sid}/utterances", json=u).json() for i, u in enumerate(dialogue)]
    for got, want in zip(answers, _expected(run, dialogue)):
        np.testing.assert_allclose(list(got["probs"].values()), list(want["probs"].values()), atol=1e-6)
    assert apps[1].delete(f"/sessions/{sid}").status_code == 200
    assert apps[0].post(f"/sessions/{sid}/utterances", json=dialogue[0]).status_code == 404
    shared = SqliteStore(store, 10)
    shared.create("x", {"history": [], "seen": 0})
    version, state = shared.load("x")
    shared.save("x", version, state)
    with pytest.raises(Conflict):  # a second write from the same read: the race a 409 reports
        shared.save("x", version, state)
    for k in range(12):  # at most max_sessions are kept, the oldest go
        shared.create(f"s{k}", {"history": [], "seen": 0})
    assert shared.load("x") is None and shared.load("s11") is not None


@pytest.mark.slow
def test_lpgnet_serve_with_two_workers_answers_sessions_from_either(served, tmp_path):
    _, run, dialogue = served
    port = 18000 + os.getpid() % 1000
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "lpgnet", "serve", "--run", str(run), "--port", str(port), "--workers", "2",
           "--session-store", str(tmp_path / "s.sqlite")]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail(f"the service did not start: {proc.stderr.read() if proc.poll() is not None else ''}")
        sid = httpx.post(url + "/sessions").json()["session_id"]
        answers = [httpx.post(f"{url}/sessions/{sid}/utterances", json=u, timeout=30).json() for u in dialogue]
        for got, want in zip(answers, _expected(run, dialogue)):
            np.testing.assert_allclose(list(got["probs"].values()), list(want["probs"].values()), atol=1e-6)
        calls = httpx.post(url + "/calls")
        assert calls.status_code == 501 and "--workers 1" in calls.json()["error"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
