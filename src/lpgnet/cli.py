"""``lpgnet`` command line: train, evaluate.

Every user mistake (config, data, run directory) ends as one ``error: ...`` line on
stderr with exit status 2; no stack trace.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import LPGNetError


def _train(args: argparse.Namespace) -> int:
    from .config import DEFAULT_PRESET, load_config
    from .train import check_out_dir, train

    cfg = load_config(args.config or DEFAULT_PRESET, args.set)
    check_out_dir(args.out, args.overwrite)  # before any data is built
    train(cfg, out_dir=args.out, overwrite=args.overwrite)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_run
    from .metrics import format_metrics

    overrides = list(args.set or []) + ([f"data.path={args.data}"] if args.data else [])
    result = evaluate_run(args.run, split=args.split, overrides=overrides or None)
    print(f"{args.split}: {format_metrics(result['metrics'])}")
    if result["matches_saved"] is not None:
        print(f"matches {Path(args.run) / 'metrics.json'}: {'yes' if result['matches_saved'] else 'NO'}")
    if args.json:
        print(json.dumps(result, indent=2))
    return 0 if result["matches_saved"] is not False else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lpgnet", description="LPGNet emotion recognition in conversations")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model; writes config.yaml, model.safetensors, metrics.json, log.csv, plots")
    p.add_argument("--config", help="YAML config file or preset name (default: preset 'synthetic': built-in data, paper recipe at d_model 128, 40 epochs)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field, e.g. model.d_model=256")
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="re-score a saved run (reproduces its metrics.json)")
    p.add_argument("--run", required=True, help="run directory written by lpgnet train")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--data", help="conversation file to score instead of the run's data.path (jsonl runs)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a data field of the run's config")
    p.add_argument("--json", action="store_true", help="also print all metrics as JSON")
    p.set_defaults(func=_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LPGNetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
