"""Cost of the text features on this CPU: frozen encoding of every IEMOCAP utterance and
one fine-tuning pass (3 epochs on the training dialogues) followed by encoding.

Uses a fresh temporary cache, so nothing is read from an earlier run. A k-fold
cross-fit costs about k + 1 fine-tuning passes (the log line of a real extraction
prints its own time, and the cache entry records it as metadata).

    python -m lpgnet.benchmarks.text_features --out benchmarks/results/text_features.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ..config import load_config
from ..files import write_json
from ..training.setup import load_data
from .envinfo import describe, environment


def timed(config: str, overrides: list[str]) -> float:
    start = time.perf_counter()
    load_data(load_config(config, overrides), log=lambda m: None)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/iemocap/data-4class.yaml")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/results/text_features.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as cache:
        base = [f"data.text_encoder.cache_dir={cache}"]
        # data loading alone (JSONL parse, no encoder): subtracted from both figures
        load_only = timed(args.config, ["data.text_encoder=null", "model.modalities=[audio]"])
        frozen = timed(args.config, base + ["data.text_encoder.finetune.enabled=false"]) - load_only
        tuned = timed(args.config, base + ["data.text_encoder.finetune.crossfit_folds=0"]) - load_only
        cached = timed(args.config, base + ["data.text_encoder.finetune.crossfit_folds=0"]) - load_only
    report = {
        "env": environment(),
        "config": args.config,
        "frozen_encode_all_seconds": frozen,
        "finetune_3_epochs_plus_encode_seconds": tuned,
        "cached_read_seconds": cached,
    }
    print(
        f"frozen MiniLM, all utterances: {frozen:.0f} s; one fine-tuning pass + encoding: {tuned:.0f} s; "
        f"from the cache: {1000 * cached:.0f} ms ({torch.get_num_threads()} threads)"
    )
    write_json(args.out, report)
    print(f"written to {args.out}")


def render(data: dict[str, Any], file: Path) -> list[str]:
    """This benchmark's JSON as Markdown lines for the results page."""
    env = data["env"]
    lines = [describe(env) + ":", ""]
    lines += [
        f"- frozen MiniLM, every utterance of the file: {data['frozen_encode_all_seconds']:.0f} s",
        f"- one fine-tuning pass (3 epochs on the training dialogues) + encoding: {data['finetune_3_epochs_plus_encode_seconds']:.0f} s",
        f"- reading the cached features back: {1000 * data['cached_read_seconds']:.0f} ms",
        "",
    ]
    return lines


if __name__ == "__main__":
    main()
