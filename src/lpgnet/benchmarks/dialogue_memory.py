"""Peak memory and time against dialogue length, with and without the bounds.

For each width and dialogue length: one conversation of random features of IEMOCAP's
sizes (384-d text, 4-d speech, 4 classes), answered by ``Predictor.predict`` (eval mode,
the same path as ``lpgnet predict`` and the service), and one training epoch
(``train_epoch``) over that conversation among 63 others of 50 utterances, IEMOCAP-like:
length bucketing puts the long one in a batch of 32, all padded to its length. Each is
measured with the default bounds (``data.context_window`` 512, ``train.max_batch_utterances``
8192) and without them, in a fresh process, with the peak resident-memory growth (Linux
VmHWM, reset before measuring) and the wall time. Unbounded training stops at the
lengths ``--unbounded-train-max`` gives (beyond them it needs more memory than the 24 GB
of this machine, shared with other work).

    python -m lpgnet.benchmarks.dialogue_memory --out benchmarks/results/dialogue_memory.json
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import DataConfig, TrainConfig, load_config
from ..data.conversation import Dialogue
from ..files import write_json
from ..registry import build_model
from ..serving.predict import Predictor
from ..training.loop import train_epoch
from ..training.setup import as_items
from .efficiency import _peak_kib, _reset_peak_kib
from .envinfo import describe, environment

D_TEXT, D_AUDIO, CLASSES = 384, 4, 4
# the defaults measured against no bound at all
WINDOW, BATCH_BOUND = DataConfig().context_window, TrainConfig().max_batch_utterances


def measure(d_model: int, length: int, window: int | None, train: bool, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = load_config(
        "configs/iemocap/lpgnet.yaml" if Path("configs/iemocap/lpgnet.yaml").exists() else None,
        [
            "data.source=synthetic",
            f"model.d_model={d_model}",
            f"model.d_text={D_TEXT}",
            f"model.d_audio={D_AUDIO}",
            f"model.num_classes={CLASSES}",
            f"data.context_window={'null' if window is None else window}",
            f"train.max_batch_utterances={BATCH_BOUND if window is not None else 10**9}",
            "data.text_encoder=null",
            "train.progress=false",
        ],
    )
    model = build_model(cfg.model)
    rng = np.random.default_rng(0)
    text = rng.normal(size=(length, D_TEXT)).astype(np.float32)
    audio = rng.normal(size=(length, D_AUDIO)).astype(np.float32)
    row: dict[str, Any] = {
        "d_model": d_model,
        "length": length,
        "window": window,
        "max_batch_utterances": BATCH_BOUND if window is not None else None,
    }
    predictor = Predictor(model, cfg, [str(c) for c in range(CLASSES)])
    utterances = [{"text_emb": t.tolist(), "audio_emb": a.tolist()} for t, a in zip(text, audio)]
    base = _reset_peak_kib()  # inference first: memory a training step frees stays with the allocator
    t0 = time.perf_counter()
    predictor.predict(utterances)
    row["predict_s"], row["predict_peak_mb"] = time.perf_counter() - t0, (_peak_kib() - base) / 1024
    if train:
        dialogues = [Dialogue("long", text, audio, rng.integers(0, CLASSES, length))] + [
            Dialogue(
                f"d{i}",
                rng.normal(size=(50, D_TEXT)).astype(np.float32),
                rng.normal(size=(50, D_AUDIO)).astype(np.float32),
                rng.integers(0, CLASSES, 50),
            )
            for i in range(63)
        ]
        items = as_items(cfg, dialogues)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
        base = _reset_peak_kib()
        t0 = time.perf_counter()
        train_epoch(model, items, cfg, opt, rng)
        row["train_epoch_s"], row["train_peak_mb"] = time.perf_counter() - t0, (_peak_kib() - base) / 1024
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512, 1024, 2048, 4096])
    parser.add_argument("--widths", type=int, nargs="+", default=[256, 768])
    parser.add_argument(
        "--unbounded-train-max",
        type=int,
        nargs="+",
        default=[1024, 512],
        help="per width: the longest dialogue trained on without the bounds",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/dialogue_memory.json")
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")  # a fresh process each: freed memory would hide the next peak
    rows = []
    for d_model, train_max in zip(args.widths, args.unbounded_train_max):
        for length in args.lengths:
            for window in (WINDOW, None):  # the default bounds, then none
                train = window is not None or length <= train_max
                with ctx.Pool(1, maxtasksperchild=1) as pool:
                    r = pool.apply(measure, (d_model, length, window, train, args.threads))
                rows.append(r)
                trained = (
                    f"; train epoch {r['train_epoch_s']:.2f} s (+{r['train_peak_mb']:.0f} MB)"
                    if "train_epoch_s" in r
                    else ""
                )
                print(
                    f"d {d_model}, {length} utterances, window {window}: predict {r['predict_s']:.2f} s "
                    f"(+{r['predict_peak_mb']:.0f} MB){trained}",
                    flush=True,
                )
    write_json(args.out, {"env": environment(), "threads": args.threads, "rows": rows})
    print(f"written to {args.out}")


def render(data: dict[str, Any], file: Path) -> list[str]:
    """This benchmark's JSON as Markdown lines for the results page."""
    lines = [
        describe(data["env"]) + f"; each measurement in its own process with {data['threads']} thread(s).",
        "",
        "| d_model | utterances | bounds | predict, s | predict peak MB | train epoch, s | train peak MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        train = (
            f"{r['train_epoch_s']:.2f} | {r['train_peak_mb']:.0f}" if "train_epoch_s" in r else "not run (memory) | –"
        )
        window = f"window {r['window']}, batch {r['max_batch_utterances']}" if r["window"] is not None else "none"
        lines.append(
            f"| {r['d_model']} | {r['length']:,} | {window} | {r['predict_s']:.2f} | {r['predict_peak_mb']:.0f} | {train} |"
        )
    lines.append("")
    return lines


if __name__ == "__main__":
    main()
