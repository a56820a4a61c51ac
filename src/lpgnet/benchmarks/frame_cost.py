"""LPGNet (Frame) at the paper's 512 frames: time per batch and peak memory on CPU.

For each width: a batch of utterances, each with 512 text tokens and 512 audio frames
(768-d inputs, as BERT / emotion2vec give), timed for one training step (forward,
self-distillation loss, backward, Adam step) and one inference forward (median of
repeats after warm-up), with the peak resident-memory growth of each (Linux VmHWM,
reset before measuring).

    python -m lpgnet.benchmarks.frame_cost --out benchmarks/results/frame_cost.json
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from ..config import LossConfig
from ..files import write_json
from ..models.lpgnet.distillation import self_distillation_loss
from ..models.lpgnet.frame import FrameLPGNet, FrameLPGNetConfig
from .efficiency import _peak_kib, _reset_peak_kib
from .envinfo import describe, environment


def timed(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(d_model: int, batch: int, frames: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = FrameLPGNet(FrameLPGNetConfig(d_text=768, d_audio=768, num_classes=4, d_model=d_model, max_frames=frames))
    text, audio = torch.randn(batch, frames, 768), torch.randn(batch, frames, 768)
    mask = torch.ones(batch, 1, dtype=torch.bool)
    labels = torch.randint(0, 4, (batch, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        model.train()
        out = model(text, audio, mask)
        loss, _ = self_distillation_loss(out.logits, out.student_logits, labels, LossConfig())
        opt.zero_grad()
        loss.backward()
        opt.step()

    def infer() -> None:
        model.eval()
        with torch.inference_mode():
            model(text, audio, mask)

    # inference first: memory freed by a training step stays with the allocator and would hide its peak
    base = _reset_peak_kib()
    infer_s = timed(infer, repeats)
    infer_mb = (_peak_kib() - base) / 1024
    base = _reset_peak_kib()
    train_s = timed(step, repeats)
    train_mb = (_peak_kib() - base) / 1024
    return {
        "d_model": d_model,
        "batch": batch,
        "frames": frames,
        "params": model.num_parameters(),
        "train_step_s": train_s,
        "train_peak_mb": train_mb,
        "inference_s": infer_s,
        "inference_peak_mb": infer_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8, help="utterances per batch")
    parser.add_argument("--frames", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/frame_cost.json")
    args = parser.parse_args()
    # each width in a fresh process: memory freed by one stays with the allocator and would hide the next one's peak
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1, maxtasksperchild=1) as pool:
        rows = [pool.apply(measure, (d, args.batch, args.frames, args.repeats)) for d in (256, 768)]
    report = {"env": environment(), "rows": rows}
    for r in report["rows"]:
        print(
            f"d {r['d_model']}: {r['params']:,} params; batch of {r['batch']} x {r['frames']} frames: train step "
            f"{r['train_step_s']:.2f} s (+{r['train_peak_mb']:.0f} MB), inference {r['inference_s']:.2f} s "
            f"(+{r['inference_peak_mb']:.0f} MB)"
        )
    write_json(args.out, report)
    print(f"written to {args.out}")


def render(data: dict[str, Any], file: Path) -> list[str]:
    """This benchmark's JSON as Markdown lines for the results page."""
    env = data["env"]
    lines = [
        describe(env) + ".",
        "",
        "| d_model | parameters | batch x frames | train step, s | train peak MB | inference, s | inference peak MB |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['d_model']} | {r['params']:,} | {r['batch']} x {r['frames']} | {r['train_step_s']:.2f} | "
        f"{r['train_peak_mb']:.0f} | {r['inference_s']:.2f} | {r['inference_peak_mb']:.0f} |"
        for r in data["rows"]
    ]
    lines.append("")
    return lines


if __name__ == "__main__":
    main()
