"""Training speed on IEMOCAP: seconds per epoch, and how much of the CPU's matmul
throughput the trainer turns into useful FLOPs.

For each config: one warm-up epoch, then ``--epochs`` timed epochs of the real training
loop (length-bucketed batches, fused attention, the full self-distillation loss), the
median reported. The FLOPs of one epoch (forward + backward) come from PyTorch's own
``FlopCounterMode``; the machine's reference is a large fp32 matmul timed with the same
thread count. Padding is reported too: padded slots per real utterance with length
bucketing against random batches.

    python -m lpgnet.benchmarks.train_speed --out benchmarks/results/train_speed.json

Needs ../shared/data (or the configs' data.path) and the cached text features (the
first run computes them).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from ..config import RunConfig, load_config
from ..data.batching import batch_indices
from ..files import write_json
from ..registry import build_model
from ..training.loop import train_epoch
from ..training.setup import as_items, load_data, resolve_model_config
from .envinfo import describe, environment, matmul_gflops


def padding_ratio(lengths: list[int], batch_size: int, bucket: bool) -> float:
    batches = batch_indices(lengths, batch_size, np.random.default_rng(0), bucket)
    slots = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return slots / sum(lengths) - 1.0


def timed_epochs(cfg: RunConfig, epochs: int) -> tuple[list[float], Callable[[], Any], torch.nn.Module, list]:
    """The config's model on its training dialogues: one warm-up epoch, then ``epochs``
    timed ones of the real training loop. Returns the times, a function that runs one
    more epoch, the model and its items."""
    bundle = load_data(cfg, log=lambda m: None)
    resolve_model_config(cfg, bundle)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    model.inputs.set_stats(bundle.input_stats("train"))
    items = as_items(cfg, bundle.splits["train"])
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    rng = np.random.default_rng(0)

    def epoch() -> Any:
        return train_epoch(model, items, cfg, opt, rng)

    epoch()  # warm-up
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    return times, epoch, model, items


def bench(config: str, epochs: int, peak: float) -> dict:
    cfg = load_config(config, ["train.progress=false"])
    times, epoch, model, items = timed_epochs(cfg, epochs)
    counter = FlopCounterMode(display=False)
    with counter:
        epoch()
    flops = counter.get_total_flops()
    sec = statistics.median(times)
    lengths = [len(it.labels) for it in items]
    return {
        "config": config,
        "d_model": cfg.model.d_model,
        "params": model.num_parameters(),
        "train_dialogues": len(items),
        "train_utterances": sum(lengths),
        "sec_per_epoch": sec,
        "sec_per_epoch_all": times,
        "gflop_per_epoch": flops / 1e9,
        "achieved_gflops": flops / sec / 1e9,
        "fraction_of_matmul_peak": flops / sec / 1e9 / peak,
        "padding_per_utterance": {
            "bucketed": padding_ratio(lengths, cfg.train.batch_size, True),
            "random": padding_ratio(lengths, cfg.train.batch_size, False),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--configs", nargs="+", default=["configs/iemocap/lpgnet.yaml", "configs/iemocap/lpgnet-paper.yaml"]
    )
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per config (after one warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--out", default="benchmarks/results/train_speed.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    peak = matmul_gflops()
    report = {
        "env": environment(),
        "matmul_gflops": peak,
        "models": [bench(c, args.epochs, peak) for c in args.configs],
    }
    for m in report["models"]:
        print(
            f"{m['config']}: d {m['d_model']}, {m['params']:,} params, {m['sec_per_epoch']:.2f} s/epoch, "
            f"{m['achieved_gflops']:.1f} GFLOP/s = {100 * m['fraction_of_matmul_peak']:.0f}% of matmul "
            f"{peak:.0f} GFLOP/s; padding/utt {m['padding_per_utterance']['bucketed']:.2f} bucketed vs "
            f"{m['padding_per_utterance']['random']:.2f} random"
        )
    write_json(args.out, report)
    print(f"written to {args.out}")


def render(data: dict[str, Any], file: Path) -> list[str]:
    """This benchmark's JSON as Markdown lines for the results page."""
    env = data["env"]
    lines = [
        describe(env) + f"; measured fp32 matmul throughput {data['matmul_gflops']:.0f} GFLOP/s.",
        "",
    ]
    lines += [
        "| config | d_model | parameters | s / epoch | GFLOP / epoch | achieved GFLOP/s | of matmul peak | padding per utterance, bucketed / random batches |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in data["models"]:
        pad = m["padding_per_utterance"]
        lines.append(
            f"| `{m['config']}` | {m['d_model']} | {m['params']:,} | {m['sec_per_epoch']:.2f} | {m['gflop_per_epoch']:.1f} | "
            f"{m['achieved_gflops']:.1f} | {100 * m['fraction_of_matmul_peak']:.0f}% | {pad['bucketed']:.2f} / {pad['random']:.2f} |"
        )
    lines.append("")
    return lines


if __name__ == "__main__":
    main()
