"""One process against two: training epoch time (torchrun), text-feature extraction
throughput (torchrun shards) and service throughput (``--workers``), on this machine.

* training: the built-in preset at d_model 256, ``--epochs`` epochs, one thread per
  process, one process and then ``torchrun --nproc_per_node 2``; the median seconds per
  epoch from the runs' log.csv (the first epoch left out);
* extraction: ``--utterances`` generated sentences embedded with MiniLM into a fresh
  cache, one process and then two torchrun shards (rank 0 writes the output); utterances
  per second of the whole command, process start and model loading included;
* service: ``lpgnet.benchmarks.serve_load`` at 1 and 2 workers, ``--seconds`` each.

    python -m lpgnet.benchmarks.scale --out benchmarks/results/scale.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ..files import write_json
from .envinfo import describe, environment


def _torchrun() -> str:
    return shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")


def _lpgnet(processes: int) -> list[str]:
    """The command line start of ``lpgnet`` in one process, or under torchrun in several."""
    if processes == 1:
        return [sys.executable, "-m", "lpgnet"]
    return [_torchrun(), "--standalone", "--nproc_per_node", str(processes), "-m", "lpgnet"]


def _run(cmd: list[str], cwd: Path) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - t


def training(folder: Path, processes: int, epochs: int) -> float:
    out = folder / f"train-{processes}"
    args = ["train", "--out", str(out), "--set", f"train.epochs={epochs}", "--set", "train.patience=null",
            "--set", "model.d_model=256", "--set", "train.threads=1", "--set", "train.progress=false"]  # fmt: skip
    _run([*_lpgnet(processes), *args], folder)
    with open(out / "log.csv", newline="") as f:
        seconds = [float(r["seconds"]) for r in csv.DictReader(f)]
    return statistics.median(seconds[1:] if len(seconds) > 1 else seconds)


def extraction(folder: Path, processes: int, utterances: int) -> float:
    data = folder / "talk.jsonl"
    if not data.exists():
        words = "i am so happy sad angry fine okay what why no yes great terrible today again".split()
        with data.open("w") as f:
            for k in range(utterances):
                text = " ".join(words[(k * 7 + j) % len(words)] for j in range(5 + k % 9)) + f" number {k}"
                f.write(json.dumps({"dialog_id": f"d{k // 10}", "turn": k % 10, "text": text}) + "\n")
    args = ["extract", "--data", str(data), "--text-encoder", "minilm", "--out", str(folder / f"f{processes}.jsonl"),
            "--cache-dir", str(folder / f"cache-{processes}")]  # fmt: skip
    return utterances / _run([*_lpgnet(processes), *args], folder)


def service(folder: Path, workers: int, seconds: float) -> dict[str, Any]:
    from . import serve_load

    out = folder / f"serve-{workers}.json"
    serve_load.main(["--seconds", str(seconds), "--workers", str(workers), "--threads", "1", "--out", str(out)])
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--utterances", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30.0, help="service load per worker count")
    parser.add_argument("--out", default="benchmarks/results/scale.json")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for n in (1, 2):
            row: dict[str, Any] = {"processes": n}
            row["epoch_s"] = training(folder, n, args.epochs)
            row["extract_utterances_per_s"] = extraction(folder, n, args.utterances)
            load = service(folder, n, args.seconds)
            row["requests_per_s"] = load["requests_per_s"]
            row["p50_ms"] = load["p50_ms"]
            row["server_errors"] = load["server_errors"]
            rows.append(row)
            print(
                f"{n} process(es): epoch {row['epoch_s']:.2f} s, extraction {row['extract_utterances_per_s']:.1f} "
                f"utterances/s, service {row['requests_per_s']:.1f} requests/s",
                flush=True,
            )
    report = {"env": environment(), "cores": os.cpu_count(), "args": vars(args), "rows": rows}
    write_json(args.out, report)
    print(f"written to {args.out}")


def render(data: dict[str, Any], file: Path) -> list[str]:
    """This benchmark's JSON as Markdown lines for the results page."""
    a = data["args"]
    lines = [
        describe(data["env"]) + f"; {data['cores']} cores; one torch thread per process.",
        "",
        f"| processes | training, s per epoch (d 256, built-in data) | extraction, utterances/s (MiniLM, {a['utterances']} "
        f"sentences, whole command) | service, requests/s ({a['seconds']:.0f} s, 4 clients) | service p50, ms |",
        "|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        lines.append(
            f"| {r['processes']} | {r['epoch_s']:.2f} | {r['extract_utterances_per_s']:.1f} | "
            f"{r['requests_per_s']:.1f} | {r['p50_ms']:.1f} |"
        )
    lines.append("")
    return lines


if __name__ == "__main__":
    main()
