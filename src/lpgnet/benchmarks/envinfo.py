"""What a benchmark figure was measured on: recorded beside every timing."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(env: dict[str, object]) -> str:
    """The machine line every benchmark section of the results page opens with."""
    return f"{env['cpu']}, {env['threads']} threads, torch {env['torch']}"


def environment() -> dict[str, object]:
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }


def matmul_gflops(n: int = 2048, seconds: float = 3.0) -> float:
    """fp32 matmul throughput of this machine right now, with torch's current threads.

    Timings taken hours apart on a shared machine differ by up to 2x (measured here:
    118 and 212 GFLOP/s on the same 2 cores), so every timing benchmark records this
    reference beside its figures: a ratio to it is comparable across runs, a raw
    seconds figure is not."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up: thread pool start-up, clock ramp
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9
