"""Experiments as submitit jobs (the ``local`` executor: the same jobs a Slurm cluster
runs, as processes here): the summary equals the in-process experiment's, and a rerun
submits nothing that is finished."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lpgnet.cli import main

pytest.importorskip("submitit", reason="submitit is not installed (pip install 'lpgnet[cluster]')")

ROOT = Path(__file__).resolve().parents[2]
QUICK = ["--config", "synthetic", "--set", "train.epochs=2", "--set", "model.d_model=16",
         "--set", "data.synthetic.train_dialogues=32", "--set", "train.progress=false"]  # fmt: skip


@pytest.mark.slow
def test_local_jobs_give_the_in_process_summary_and_resume(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # jobs run in the parent's working directory
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    assert main(["experiment", *QUICK, "--seeds", "0,1", "--out", "here"]) == 0
    assert (
        main(["experiment", *QUICK, "--seeds", "0,1", "--out", "jobs", "--executor", "local", "--time-min", "10"]) == 0
    )
    assert "2 runs to train, handed to submitit (local" in capsys.readouterr().err
    here, jobs = (json.loads(Path(d, "summary.json").read_text()) for d in ("here", "jobs"))
    assert [r["seed"] for r in jobs["runs"]] == [0, 1]
    for a, b in zip(here["runs"], jobs["runs"]):  # the same training, in another process
        assert a["test"]["accuracy"] == b["test"]["accuracy"] and a["best_epoch"] == b["best_epoch"]
    logs = sorted(Path("jobs", "jobs").glob("*_log.out"))
    assert len(logs) == 2
    assert main(["experiment", *QUICK, "--seeds", "0,1,2", "--out", "jobs", "--executor", "local"]) == 0
    assert "1 run to train" in capsys.readouterr().err  # seeds 0 and 1 are finished
    assert len(sorted(Path("jobs", "jobs").glob("*_log.out"))) == 3
