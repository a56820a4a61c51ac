"""How many torch threads to train with: epoch time at one thread and at every core, on
a quiet machine and on one kept busy, for LPGNet at three widths.

The built-in demo's data (``synthetic`` preset) at d_model 128 (the demo), 256 (the
tuned IEMOCAP width) and 768 (the paper's): one warm-up epoch, then the median of
``--epochs`` timed epochs of the real training loop, with ``torch.set_num_threads`` 1 and
the core count. "Busy" runs as many CPU-bound processes beside it as the machine has
cores (what a second experiment, a test suite or another user does). This decides
``train.threads: auto`` (``lpgnet.training.setup.ONE_THREAD_MAX_WIDTH``).

    python -m lpgnet.benchmarks.threads --out benchmarks/results/threads.json
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
from pathlib import Path
from typing import Any

import torch

from ..config import load_config
from ..files import write_json
from .envinfo import describe, environment
from .train_speed import timed_epochs


def _spin() -> None:  # pragma: no cover - a load generator, killed by its parent
    while True:
        pass


def epoch_seconds(width: int, threads: int, epochs: int, dialogues: int | None) -> float:
    torch.set_num_threads(threads)
    size = [f"data.synthetic.train_dialogues={dialogues}"] if dialogues else []
    cfg = load_config("synthetic", [f"model.d_model={width}", "train.progress=false", *size])
    return statistics.median(timed_epochs(cfg, epochs)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 256, 768])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument(
        "--train-dialogues", type=int, help="fewer training dialogues than the preset's (a quick check)"
    )
    parser.add_argument("--out", default="benchmarks/results/threads.json")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    ctx = multiprocessing.get_context("spawn")
    rows = []
    for busy in (False, True):
        spinners = [ctx.Process(target=_spin, daemon=True) for _ in range(cores if busy else 0)]
        for p in spinners:
            p.start()
        try:
            load = os.getloadavg()[0]
            for width in args.widths:
                for threads in sorted({1, cores}):
                    s = epoch_seconds(width, threads, args.epochs, args.train_dialogues)
                    rows.append({"busy": busy, "width": width, "threads": threads, "epoch_s": s, "load": load})
                    print(
                        f"{'busy' if busy else 'quiet'}: d {width}, {threads} thread(s): {s:.2f} s per epoch",
                        flush=True,
                    )
        finally:
            for p in spinners:
                p.kill()
    report = {"env": environment(), "cores": cores, "train_dialogues": args.train_dialogues, "rows": rows}
    write_json(args.out, report)
    print(f"written to {args.out}")


def render(data: dict[str, Any], file: Path) -> list[str]:
    """This benchmark's JSON as Markdown lines for the results page."""
    cores = data["cores"]
    lines = [
        describe(data["env"]) + f"; {cores} cores.",
        "",
        f"| machine | d_model | 1 thread, s/epoch | {cores} threads, s/epoch | ratio ({cores} / 1) |",
        "|---|---|---|---|---|",
    ]
    by = {(r["busy"], r["width"], r["threads"]): r for r in data["rows"]}
    for busy in (False, True):
        for width in sorted({r["width"] for r in data["rows"]}):
            one, all_ = by.get((busy, width, 1)), by.get((busy, width, cores))
            if one is None or all_ is None:
                continue
            state = f"busy ({cores} spinning processes)" if busy else "quiet"
            state += f", load {one['load']:.1f}"
            lines.append(
                f"| {state} | {width} | {one['epoch_s']:.2f} | {all_['epoch_s']:.2f} | "
                f"{all_['epoch_s'] / one['epoch_s']:.2f} |"
            )
    lines.append("")
    return lines


if __name__ == "__main__":
    main()
