"""The default run on the built-in synthetic data, against the context-free baseline.

Trains the ``synthetic`` preset (LPGNet, the paper's recipe at d_model 128, 40 epochs)
and the ``synthetic-linear`` preset (the paper's "Linear" baseline) for several seeds,
and reports test accuracy / weighted F1 (multiclass) and wall time per run.

    python -m lpgnet.benchmarks.synthetic_default --seeds 0 1 2 --out benchmarks/results/synthetic_default.json
"""

from __future__ import annotations

import argparse
import statistics
import time

from ..config import load_config
from ..files import write_json
from ..training.loop import train
from .envinfo import environment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=None, help="train.threads (default: the config's, auto)")
    parser.add_argument("--out", default="benchmarks/results/synthetic_default.json")
    args = parser.parse_args()
    threads = [f"train.threads={args.threads}"] if args.threads else []
    report: dict = {
        "env": environment(),
        "train_threads": args.threads or "auto",
        "chance_accuracy": 1 / 6,
        "models": {},
    }
    for preset in ("synthetic", "synthetic-linear"):
        rows = []
        for seed in args.seeds:
            cfg = load_config(preset, [f"train.seed={seed}", "train.progress=false", *threads])
            t0 = time.perf_counter()
            result = train(cfg, log=lambda _msg: None)
            wall = time.perf_counter() - t0
            test = result.metrics["test"]
            rows.append(
                {
                    "seed": seed,
                    "accuracy": test["accuracy"],
                    "weighted_f1": test["weighted_f1"],
                    "best_epoch": result.metrics["best_epoch"],
                    "wall_seconds": wall,
                    "params": result.metrics["params"],
                }
            )
            print(
                f"{preset:17s} seed {seed}: test acc {test['accuracy']:.4f} wF1 {test['weighted_f1']:.4f}"
                f"  ({wall:.1f} s, best epoch {result.metrics['best_epoch']})",
                flush=True,
            )
        summary = {
            k: {
                "mean": statistics.mean(r[k] for r in rows),
                "std": statistics.stdev(r[k] for r in rows) if len(rows) > 1 else 0.0,
            }
            for k in ("accuracy", "weighted_f1", "wall_seconds")
        }
        report["models"][preset] = {"runs": rows, **summary}
        print(
            f"{preset:17s} mean test acc {summary['accuracy']['mean']:.4f} ± {summary['accuracy']['std']:.4f}, "
            f"wF1 {summary['weighted_f1']['mean']:.4f}, wall {summary['wall_seconds']['mean']:.1f} s per run"
        )
    write_json(args.out, report)
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
