"""kill -9 at every kind of moment (issue 18): ``train``, ``experiment``, ``extract`` and
``prepare`` killed just before one of their renames (tests/killer.py) leave nothing a
later command mistakes for a finished result, and the same command run again finishes
with exactly what an uninterrupted run gives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from data.test_prepare import make_iemocap
from features.test_extract import write_conv

KILLER = Path(__file__).with_name("killer.py")
TINY = [
    "--set",
    "data.synthetic.train_dialogues=20",
    "--set",
    "data.synthetic.test_dialogues=6",
    "--set",
    "data.synthetic.max_turns=10",
    "--set",
    "model.d_model=16",
    "--set",
    "model.heads=2",
    "--set",
    "train.epochs=2",
    "--set",
    "train.progress=false",
]


def lpgnet(k: int, root: Path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    return subprocess.run(
        [sys.executable, str(KILLER), str(k), str(root), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def kill_points(root: Path, *args) -> list[int]:
    """The renames of an uninterrupted run (in a scratch copy of ``root``'s role): the
    first, one in the middle and the last."""
    done = lpgnet(0, root, *args)
    assert done.returncode == 0, done.stderr
    n = int(done.stderr.strip().splitlines()[-1].split()[-1])
    assert n >= 1
    return sorted({1, (n + 1) // 2, n})


def files(folder: Path) -> dict[str, bytes]:
    """Every visible file under ``folder`` (hidden leftovers of a killed write aside)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    }


def killed(root: Path, k: int, *args) -> None:
    done = lpgnet(k, root, *args)
    assert done.returncode == -signal.SIGKILL, (k, done.returncode, done.stderr[-500:])


def test_train_killed_leaves_no_finished_looking_run_and_trains_again(tmp_path):
    clean = tmp_path / "clean"
    points = kill_points(clean, "train", "--out", clean / "run", *TINY)
    reference = json.loads((clean / "run" / "metrics.json").read_text())
    for k in points:
        root = tmp_path / f"k{k}"
        killed(root, k, "train", "--out", root / "run", *TINY)
        assert not (root / "run" / "metrics.json").exists()  # the finished marker comes last
        if (root / "run" / "model.safetensors").exists():  # scored, but said to be unfinished
            scored = lpgnet(0, root, "evaluate", "--run", root / "run")
            assert scored.returncode == 0 and "is not a finished run" in scored.stdout
        (root / "conv.jsonl").write_text('{"text_emb": [0.0]}\n')
        refused = lpgnet(
            0, root, "predict", "--run", root / "run", "--input", root / "conv.jsonl", "--out", root / "p.jsonl"
        )
        assert refused.returncode == 2 and "not a finished lpgnet run" in refused.stderr
        again = lpgnet(0, root, "train", "--out", root / "run", *TINY)
        assert again.returncode == 0, again.stderr
        metrics = json.loads((root / "run" / "metrics.json").read_text())
        assert metrics["test"] == reference["test"] and metrics["best_epoch"] == reference["best_epoch"]


def test_experiment_killed_resumes_from_its_finished_seeds(tmp_path):
    clean = tmp_path / "clean"
    args = ["experiment", "--config", "synthetic", "--seeds", "3", *TINY]
    points = kill_points(clean, *args, "--out", clean / "exp")
    reference = json.loads((clean / "exp" / "summary.json").read_text())
    for k in points:
        root = tmp_path / f"k{k}"
        killed(root, k, *args, "--out", root / "exp")
        assert not (root / "exp" / "summary.json").exists()
        finished = {p.parent.name: p.stat().st_mtime_ns for p in (root / "exp").glob("seed-*/metrics.json")}
        again = lpgnet(0, root, *args, "--out", root / "exp")
        assert again.returncode == 0, again.stderr
        summary = json.loads((root / "exp" / "summary.json").read_text())
        assert [r["test"] for r in summary["runs"]] == [r["test"] for r in reference["runs"]]
        for seed, mtime in finished.items():  # a finished seed is reused, not trained again
            assert (root / "exp" / seed / "metrics.json").stat().st_mtime_ns == mtime


def test_extract_killed_leaves_no_partial_output_and_finishes_the_same(tmp_path, tiny_bert):
    def args(root):
        return ["extract", "--data", root / "conv", "--text-encoder", tiny_bert, "--cache-dir", root / "cache"]

    clean = tmp_path / "clean"
    write_conv(clean / "conv")
    points = kill_points(clean, *args(clean))
    reference = (clean / "conv" / "features.jsonl").read_bytes()
    for k in points:
        root = tmp_path / f"k{k}"
        write_conv(root / "conv")
        killed(root, k, *args(root))
        out = root / "conv" / "features.jsonl"
        assert not out.exists() or out.read_bytes() == reference  # absent or complete, never half
        again = lpgnet(0, root, *args(root), "--overwrite")
        assert again.returncode == 0, again.stderr
        assert out.read_bytes() == reference


@pytest.mark.parametrize("over_existing", [False, True])
def test_prepare_killed_leaves_the_old_output_or_none_and_prepares_again(tmp_path, over_existing):
    source = make_iemocap(tmp_path / "src")

    def args(root):
        return ["prepare", "iemocap", "--root", source, "--out", root / "prepared"]

    clean = tmp_path / "clean"
    points = kill_points(clean, *args(clean))
    reference = files(clean / "prepared")
    for k in points:
        root = tmp_path / f"k{k}"
        if over_existing:  # a finished earlier output, replaced with --overwrite
            (root / "prepared").mkdir(parents=True)
            (root / "prepared" / "utterances.jsonl").write_text('{"old": true}\n')
        extra = ["--overwrite"] if over_existing else []
        killed(root, k, *args(root), *extra)
        left = files(root / "prepared") if (root / "prepared").exists() else {}
        assert left in ({}, reference, {"utterances.jsonl": b'{"old": true}\n'})  # whole: old, new or none
        again = lpgnet(0, root, *args(root), "--overwrite")
        assert again.returncode == 0, again.stderr
        assert files(root / "prepared") == reference
