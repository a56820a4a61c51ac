"""Training under torchrun (DDP, gloo on CPU): two processes take the step one process
takes, and ``torchrun -m lpgnet train`` writes the run once, with the one-process result.

Tolerance, and why it holds: each process sums its share of the batch and the shares are
added (loss denominators and BatchNorm statistics of (6) over the whole batch, gradients
averaged by DDP), so a step's gradient differs from one process's only by the order of
floating-point sums: 1e-5 relative to the largest gradient entry (float32 sums of a few
hundred terms are good to about 1e-6). Over a whole run, Adam turns gradient entries near
zero into steps of up to the learning rate either way, so weights drift apart by a few
learning rates at most; the test checks that accuracy agrees within two points."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lpgnet.training import distributed

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

pytestmark = [
    pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch build has no torch.distributed"),
    pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                       reason="torchrun is not on the PATH"),
]  # fmt: skip


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(HERE)])}
    cmd = [exe, "--standalone", "--nproc_per_node", "2", *args]  # standalone: a free local port
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_two_processes_take_the_gradient_step_of_one(tmp_path):
    from ddp_step import first_batch_gradient

    one = first_batch_gradient(distributed.SINGLE)
    done = torchrun(str(HERE / "ddp_step.py"), str(tmp_path / "g.safetensors"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    two = load_file(tmp_path / "g.safetensors")
    assert set(two) == set(one)
    scale = max(float(g.abs().max()) for g in one.values())
    for name, g in one.items():
        assert torch.allclose(two[name], g, rtol=0, atol=1e-5 * scale), (name, float((two[name] - g).abs().max()))


@pytest.mark.slow
def test_torchrun_train_writes_one_run_with_the_one_process_result(tmp_path):
    quick = ["--set", "train.epochs=3", "--set", "model.dropout=0", "--set", "model.d_model=32",
             "--set", "data.synthetic.train_dialogues=64", "--set", "train.progress=false"]  # fmt: skip
    done = torchrun("-m", "lpgnet", "train", *quick, "--out", str(tmp_path / "two"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("run written to") == 1  # rank 0 alone reports and writes
    from lpgnet.cli import main

    assert main(["train", *quick, "--out", str(tmp_path / "one")]) == 0
    one, two = (json.loads((tmp_path / r / "metrics.json").read_text()) for r in ("one", "two"))
    assert two["processes"] == 2 and "processes" not in one
    assert abs(one["test"]["accuracy"] - two["test"]["accuracy"]) <= 0.02
    assert one["best_epoch"] == two["best_epoch"]


@pytest.mark.slow
def test_torchrun_experiment_writes_its_summary_once(tmp_path):
    quick = ["--set", "train.epochs=2", "--set", "model.d_model=16", "--set", "data.synthetic.train_dialogues=32",
             "--set", "train.progress=false"]  # fmt: skip
    done = torchrun(
        "-m",
        "lpgnet",
        "experiment",
        "--config",
        "synthetic",
        *quick,
        "--seeds",
        "0,1",
        "--out",
        str(tmp_path / "x"),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "x" / "summary.json").read_text())
    assert [r["seed"] for r in summary["runs"]] == [0, 1] and done.stdout.count("summary written to") == 1
    assert all(
        json.loads((tmp_path / "x" / f"seed-{s}" / "metrics.json").read_text())["processes"] == 2 for s in (0, 1)
    )
