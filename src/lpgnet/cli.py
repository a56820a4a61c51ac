"""``lpgnet`` command line: train, evaluate, experiment, report, bench, extract, export, predict, serve.

Every user mistake (config, data, run directory) ends as one ``error: ...`` line on
stderr with exit status 2; no stack trace. Each command imports what it runs when it
runs, so ``lpgnet predict`` and ``lpgnet serve`` never load the training code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .errors import ConfigError, DataError, LPGNetError, RunDirError
from .serving.store import MAX_SESSIONS


def _prepare(args: argparse.Namespace) -> int:
    from .data.prepare import prepare_iemocap, prepare_meld, prepare_table

    common = dict(out=args.out, strict=args.strict, overwrite=args.overwrite)
    if args.corpus == "iemocap":
        result = prepare_iemocap(args.root, **common)
    elif args.corpus == "meld":
        result = prepare_meld(args.root, text_only=args.text_only, **common)
    else:
        result = prepare_table(args.csv, **common)
    print("\n".join(result.summary()))
    return 0


def add_prepare_parser(subparsers: Any) -> None:
    """Register ``lpgnet prepare {iemocap,meld,table}`` on the main parser's subcommands."""
    p = subparsers.add_parser("prepare", help="convert IEMOCAP, MELD or a CSV table into the JSONL conversation format")
    sub = p.add_subparsers(dest="corpus", required=True)
    specs = [
        (
            "iemocap",
            "IEMOCAP_full_release folder -> utterances.jsonl, splits.json (session5)",
            "--root",
            "the IEMOCAP_full_release folder",
        ),
        (
            "meld",
            "MELD.Raw folder -> utterances.jsonl, splits.json (meld: train/valid/test)",
            "--root",
            "the MELD.Raw folder (CSVs and clip folders)",
        ),
        (
            "table",
            "CSV (dialog_id, turn, text, audio_path [, label, speaker, split]) -> utterances.jsonl",
            "--csv",
            "the CSV file",
        ),
    ]
    for name, help_text, source, source_help in specs:
        q = sub.add_parser(name, help=help_text)
        q.add_argument(source, required=True, help=source_help)
        q.add_argument(
            "--out", required=True, help="output folder (utterances.jsonl, splits.json, prepare-report.json)"
        )
        q.add_argument(
            "--strict", action="store_true", help="stop at the first problem instead of skipping and counting it"
        )
        q.add_argument(
            "--overwrite", action="store_true", help="replace a non-empty --out once the new output is complete"
        )
        if name == "meld":
            q.add_argument(
                "--text-only",
                action="store_true",
                help="write no audio paths (also automatic when ffmpeg is not on PATH)",
            )
        q.set_defaults(func=_prepare)


def _train(args: argparse.Namespace) -> int:
    from .config import DEFAULT_PRESET, load_config
    from .runs import check_out_dir
    from .training.loop import train

    cfg = load_config(args.config or DEFAULT_PRESET, args.set)
    check_out_dir(args.out, args.overwrite)  # before any data is built
    train(cfg, out_dir=args.out, overwrite=args.overwrite, device=args.device)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .training.evaluate import evaluate_run
    from .training.metrics import format_metrics

    overrides = list(args.set or []) + ([f"data.path={args.data}"] if args.data else [])
    result = evaluate_run(args.run, split=args.split, overrides=overrides or None)
    print(f"{args.split}: {format_metrics(result['metrics'])}")
    if not result["finished"]:
        print(
            f"note: {args.run} is not a finished run (no metrics.json: stopped or killed before its end); "
            "its saved weights were scored, with nothing to compare against"
        )
    if result["data_changed"]:
        print(
            f"note: the data files changed since this run was trained (data_sha256 differs from {Path(args.run) / 'metrics.json'})"
        )
    if result["matches_saved"] is not None:
        print(f"matches {Path(args.run) / 'metrics.json'}: {'yes' if result['matches_saved'] else 'NO'}")
    if args.json:
        print(json.dumps(result, indent=2))
    return 0 if result["matches_saved"] is not False else 1


def _executor(args: argparse.Namespace, default_folder: Path) -> Any:
    from .experiments.cluster import make_executor

    return make_executor(
        args.executor,
        args.jobs_dir or default_folder,
        partition=args.slurm_partition,
        gpus=args.gpus,
        cpus=args.cpus,
        time_min=args.time_min,
        mem_gb=args.mem_gb,
    )


def add_executor_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--executor",
        choices=["slurm", "local"],
        help="train the runs as submitit jobs: on Slurm, or as processes here (default: in this process)",
    )
    p.add_argument("--jobs-dir", help="submitit's job files and logs (default: <out>/jobs)")
    p.add_argument("--slurm-partition", help="Slurm partition")
    p.add_argument("--gpus", type=int, default=0, help="GPUs per job (default 0)")
    p.add_argument("--cpus", type=int, default=1, help="CPUs per job (default 1)")
    p.add_argument("--time-min", type=int, default=60, help="time limit per job, minutes (default 60)")
    p.add_argument("--mem-gb", type=float, help="memory per job, GB")


def _experiment(args: argparse.Namespace) -> int:
    from .config import load_config
    from .experiments.runner import parse_seeds, read_summary, run_experiment

    seeds = parse_seeds(args.seeds)
    folds = [f"loso-{g}" for g in args.folds.split(",")] if args.folds else None
    cfg = load_config(args.config, args.set)
    reuse = read_summary(args.reuse) if args.reuse else None
    executor = _executor(args, Path(args.out) / "jobs")
    summary = run_experiment(
        cfg,
        args.out,
        seeds,
        overrides=args.set,
        folds=folds,
        overwrite=args.overwrite,
        config_name=args.config,
        device=args.device,
        reuse=reuse,
        executor=executor,
    )
    if os.environ.get("RANK", "0") != "0":  # under torchrun rank 0 alone reports
        return 0
    test = summary["test"]
    print(
        f"{summary['model']}: test over {len(summary['runs'])} runs: "
        + "  ".join(
            f"{k} {test[k]['mean']:.4f}±{test[k]['std']:.4f}"
            for k in ("accuracy", "weighted_f1", "macro_f1", "uar", "ova_accuracy", "ova_f1")
        )
    )
    print(f"summary written to {Path(args.out) / 'summary.json'}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from .data.shards import parse_shard
    from .experiments.render import write_report

    k, n = parse_shard(args.shard)
    out = write_report(
        args.manifest,
        args.out,
        runs_dir=args.runs,
        run=args.run,
        only=args.only,
        shard=(k, n),
        use_record=not args.ignore_record,
        device=args.device,
        executor=_executor(args, Path("jobs")),
    )
    print(f"report written to {out}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .benchmarks.efficiency import MODELS, run_bench
    from .errors import ConfigError
    from .registry import available_models

    models = args.models.split(",") if args.models else list(MODELS)
    unknown = [m for m in models if m not in available_models()]
    if unknown:
        raise ConfigError(f"--models: unknown model {unknown[0]!r} (available: {', '.join(available_models())})")
    try:
        lengths = [int(n) for n in args.lengths.split(",")] if args.lengths else None
        assert lengths is None or all(n > 0 for n in lengths)
    except (ValueError, AssertionError):
        raise ConfigError(f"--lengths {args.lengths!r}: expected positive integers, e.g. 10,50,200") from None
    plot = args.plot or str(Path(args.out).with_suffix(".png"))
    run_bench(
        args.out,
        models,
        lengths,
        threads=args.threads,
        configs_dir=args.configs,
        data_path=args.data,
        plot=plot,
        memory=not args.no_memory,
        train_epoch=not args.no_epoch,
    )
    print(f"written to {args.out} and {plot}")
    return 0


def _extract(args: argparse.Namespace) -> int:
    from .config import TextEncoderConfig
    from .data.shards import parse_shard
    from .features.extract import ExtractConfig, extract, shard_marker

    text = None
    if args.text_encoder:
        text = TextEncoderConfig(
            encoder=args.text_encoder,
            pooling=args.text_pooling,
            max_length=args.text_max_length,
            batch_size=args.batch_size,
        )
        text.validate("--text-*")
    audio = None
    if args.audio_encoder:
        from .features.audio import AudioEncoderConfig

        audio = AudioEncoderConfig(encoder=args.audio_encoder, layer=args.audio_layer, batch_size=args.batch_size)
        audio.validate("--audio-*")
    cfg = ExtractConfig(
        data=args.data,
        out=args.out,
        text=text,
        audio=audio,
        text_field=args.text_field,
        audio_field=args.audio_field,
        frames=args.frames,
        max_frames=args.max_frames,
        strict=args.strict,
        overwrite=args.overwrite,
        cache_dir=args.cache_dir,
    )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if args.shard:
        cfg.shard = parse_shard(args.shard)
    elif world > 1:  # torchrun: each process fills the cache for one shard (on its own GPU), rank 0 writes
        from .training import distributed

        ctx = distributed.from_env()
        cfg.shard = (ctx.rank, ctx.world)
        if ctx.device is not None and cfg.audio is not None:
            cfg.audio.device = str(ctx.device)
        extract(cfg, log=print if ctx.main else lambda m: None)
        ctx.barrier()
        if ctx.main:
            cfg.shard = None
            extract(cfg)
            for i in range(ctx.world):
                shard_marker(cfg.paths()[1], i, ctx.world).unlink(missing_ok=True)
        return 0
    extract(cfg)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from .data.shards import merge_round_robin, parse_shard, shard_path
    from .files import atomic_path
    from .serving.predict import Predictor, check_predict_args

    check_predict_args(args.run, args.input)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if (args.shard or world > 1) and not args.out:
        raise ConfigError("--shard and torchrun write one file per shard: give --out")
    if args.out and not args.shard and Path(args.out).exists() and not args.overwrite:
        raise RunDirError(f"{args.out}: exists; pass --overwrite to replace it")
    ctx = None
    if args.shard:
        shard = parse_shard(args.shard)
    elif world > 1:  # torchrun: one shard per process, merged by rank 0 at the end
        from .training import distributed

        ctx = distributed.from_env()
        shard = (ctx.rank, ctx.world)
    else:
        shard = (0, 1)
    predictor = Predictor.from_run(args.run)
    target = shard_path(args.out, *shard) if shard[1] > 1 else args.out
    if shard[1] > 1 and Path(target).exists() and not args.overwrite:
        print(f"shard {shard[0]}/{shard[1]}: already done ({target}); --overwrite to redo it", file=sys.stderr)
        count = None
    elif target is None:
        for row in predictor.iter_predictions(args.input):
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
        return 0
    else:
        count = 0
        with atomic_path(target) as tmp, tmp.open("w", encoding="utf-8") as f:
            for row in predictor.iter_predictions(args.input, shard):
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
        print(f"{count} predictions written to {target}", file=sys.stderr)
    if ctx is not None:
        ctx.barrier()
        if ctx.main:
            lines = merge_round_robin(args.out, ctx.world, overwrite=True)
            for i in range(ctx.world):
                shard_path(args.out, i, ctx.world).unlink()
            print(f"{ctx.world} shards merged: {lines} predictions in {args.out}", file=sys.stderr)
    return 0


def _merge(args: argparse.Namespace) -> int:
    """Predictions: interleave the shard files. Features: the extraction the shards
    recorded, run once more without a shard (every utterance is in the cache by then)."""
    from .data.shards import merge_round_robin
    from .features.extract import ExtractConfig, extract, shard_marker

    markers = [shard_marker(Path(args.out), i, args.shards) for i in range(args.shards)]
    if any(m.exists() for m in markers):
        missing = [str(m) for m in markers if not m.exists()]
        if missing:
            raise DataError(f"{args.out}: cannot merge, extraction shards not done: {', '.join(missing)}")
        record = json.loads(markers[0].read_text(encoding="utf-8"))["extract"]
        cfg = ExtractConfig.from_record(record, str(markers[0]))
        cfg.overwrite = args.overwrite
        extract(cfg)
        return 0
    lines = merge_round_robin(args.out, args.shards, overwrite=args.overwrite)
    print(f"{args.shards} shards merged: {lines} lines in {args.out}", file=sys.stderr)
    return 0


def _analyze(args: argparse.Namespace) -> int:
    from .recordings.asr import AsrConfig
    from .recordings.speakers import SpeakerConfig
    from .serving.analyze import AnalyzeConfig, run_analyze

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    cfg = AnalyzeConfig(
        modalities=args.modalities.split(",") if args.modalities else None,
        speakers=SpeakerConfig(
            speakers=args.speakers,
            max_speakers=args.max_speakers,
            threshold=args.speaker_threshold,
            channels=args.channels,
        ),
        asr=AsrConfig(model=args.asr_model, language=args.language or None, beam_size=args.beam_size),
    )
    result = run_analyze(args.run, args.recordings, args.out, cfg, segments=args.segments, overwrite=args.overwrite)
    print(f"{result['analysed']} analysed, {result['skipped']} skipped; summary in {Path(args.out) / 'summary.json'}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from .serving.analyze import AnalyzeConfig
    from .serving.serve import serve

    serve(
        args.run,
        args.host,
        args.port,
        workers=args.workers,
        session_store=args.session_store,
        threads=args.threads,
        max_body_bytes=args.max_body_kb * 1024,
        max_utterances=args.max_utterances,
        max_sessions=args.max_sessions,
        max_audio_bytes=args.max_audio_mb * 1_000_000,
        max_audio_seconds=args.max_audio_seconds,
        analyze=AnalyzeConfig(modalities=args.modalities.split(",") if args.modalities else None),
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    from .serving.export import export_onnx

    info = export_onnx(args.run, args.out, overwrite=args.overwrite)
    print(
        f"{info['out']}: inputs {', '.join(info['inputs'])} -> {', '.join(info['outputs'])}; "
        f"labels {', '.join(info['labels'])}; onnxruntime vs PyTorch max |diff| {info['max_abs_diff']:.1e}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lpgnet", description="LPGNet emotion recognition in conversations")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "train", help="train a model; writes config.yaml, model.safetensors, metrics.json, log.csv, plots"
    )
    p.add_argument(
        "--config",
        help="YAML config file or preset name (default: preset 'synthetic': built-in data, paper recipe at d_model 128, 40 epochs)",
    )
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="override a config field, e.g. model.d_model=256"
    )
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    p.add_argument("--device", help="where to train: cpu (default), cuda, cuda:N or auto (CUDA when available)")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="re-score a saved run (reproduces its metrics.json)")
    p.add_argument("--run", required=True, help="run directory written by lpgnet train")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--data", help="conversation file to score instead of the run's data.path (jsonl runs)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a data field of the run's config")
    p.add_argument("--json", action="store_true", help="also print all metrics as JSON")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser(
        "experiment", help="train one config over N seeds (and LOSO folds); write mean ± std to summary.json"
    )
    p.add_argument("--config", required=True, help="YAML config file or preset name")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field")
    p.add_argument(
        "--seeds", default="10", help="a count (10 = seeds 0..9), a range (3-7) or a list (0,4,9); default 10"
    )
    p.add_argument("--folds", help="leave-one-group-out folds, e.g. 1,2,3,4,5 (protocol loso-<g> on data.group_field)")
    p.add_argument("--out", required=True, help="experiment directory (one run directory per seed)")
    p.add_argument("--overwrite", action="store_true", help="retrain seeds whose finished run has a different config")
    p.add_argument("--device", help="where to train: cpu (default), cuda, cuda:N or auto (CUDA when available)")
    p.add_argument(
        "--reuse",
        metavar="SUMMARY.json",
        help="an earlier summary of this experiment (e.g. its committed record): its runs of the same "
        "config on the same data count as finished, without their run directories",
    )
    add_executor_arguments(p)
    p.set_defaults(func=_experiment)

    p = sub.add_parser(
        "report", help="write docs/RESULTS.md from a manifest of experiments (--run: run the missing ones first)"
    )
    p.add_argument("--manifest", required=True, help="YAML manifest of tables and rows, e.g. experiments/iemocap.yaml")
    p.add_argument("--out", required=True, help="Markdown file to write, e.g. docs/RESULTS.md")
    p.add_argument("--runs", help="experiments directory (default: the manifest's runs_dir)")
    p.add_argument(
        "--run", action="store_true", help="run every row whose summary.json is missing (resumes finished seeds)"
    )
    p.add_argument(
        "--only",
        action="append",
        metavar="SECTION",
        help="run and re-render only this table (id), 'targets' or benchmark (kind); the rest of an "
        "existing page is kept as it is (repeatable)",
    )
    p.add_argument(
        "--ignore-record",
        action="store_true",
        help="read summaries from the run directories only, not the manifest's record_dir "
        "(with --run: retrain rows the record already holds)",
    )
    p.add_argument("--device", help="where to train: cpu (default), cuda, cuda:N or auto (CUDA when available)")
    p.add_argument(
        "--shard",
        default="0/1",
        metavar="K/N",
        help="with --run: take only every N-th row from the K-th (parallel workers, e.g. 0/2 and 1/2)",
    )
    add_executor_arguments(p)
    p.set_defaults(func=_report)

    p = sub.add_parser(
        "bench", help="parameters, FLOPs, CPU latency, throughput, memory and epoch time: LPGNet and its peers"
    )
    p.add_argument("--out", required=True, help="JSON file to write (the plot goes beside it as .png)")
    p.add_argument("--plot", help="PNG file for the plot (default: --out with .png)")
    p.add_argument("--models", help="comma-separated model names (default: lpgnet,sdt,gru,transformer,linear)")
    p.add_argument("--lengths", help="dialogue lengths for latency and FLOPs (default: 10,25,50,100,200)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own); recorded in the JSON")
    p.add_argument(
        "--configs", default="configs/iemocap", help="folder of the models' IEMOCAP configs (default: configs/iemocap)"
    )
    p.add_argument(
        "--data",
        default="../shared/data/iemocap/utterances.jsonl",
        help="IEMOCAP utterances file, for the training-epoch dialogue lengths",
    )
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory probes (one subprocess per model)")
    p.add_argument("--no-epoch", action="store_true", help="skip the training-epoch timing")
    p.set_defaults(func=_bench)

    p = sub.add_parser("extract", help="add text / audio feature vectors to a conversation JSONL (resumable, cached)")
    p.add_argument(
        "--data", required=True, help="conversation JSONL, or a folder with utterances.jsonl (lpgnet prepare)"
    )
    p.add_argument("--out", help="JSONL to write (default: features.jsonl beside the input)")
    p.add_argument("--text-encoder", help="BERT-style encoder: local folder, cached hub name, or 'minilm' (bundled)")
    p.add_argument("--text-pooling", default="cls", choices=["cls", "mean"], help="[CLS] (paper) or mean of tokens")
    p.add_argument("--text-max-length", type=int, default=128, help="tokens per utterance (default 128)")
    p.add_argument(
        "--audio-encoder",
        help="'egemaps' (openSMILE), a wav2vec2 / HuBERT folder, or 'emotion2vec:<model dir>' (FunASR)",
    )
    p.add_argument("--audio-layer", type=int, help="hidden layer of a wav2vec2 / HuBERT encoder (default: last)")
    p.add_argument("--text-field", default="text_emb", help="output field of the text vector (default text_emb)")
    p.add_argument("--audio-field", default="audio_emb", help="output field of the audio vector (default audio_emb)")
    p.add_argument(
        "--frames", action="store_true", help="also write token / frame sequences (<out>.frames-<m>.safetensors)"
    )
    p.add_argument("--max-frames", type=int, default=512, help="frames kept per utterance with --frames (default 512)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--cache-dir", help="feature cache (default $LPGNET_CACHE or ~/.cache/lpgnet)")
    p.add_argument("--strict", action="store_true", help="stop at the first bad utterance (default: skip and count)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument(
        "--shard",
        help="i/n: embed only the dialogues at positions i mod n into the cache (then lpgnet merge writes the "
        "output); under torchrun each process takes one shard and rank 0 writes",
    )
    p.set_defaults(func=_extract)

    p = sub.add_parser("export", help="export a trained run to ONNX (checked against PyTorch before it is kept)")
    p.add_argument("--run", required=True, help="run directory written by lpgnet train")
    p.add_argument("--format", default="onnx", choices=["onnx"], help="export format (onnx)")
    p.add_argument("--out", required=True, help="file to write, e.g. model.onnx")
    p.add_argument("--overwrite", action="store_true", help="replace an existing file")
    p.set_defaults(func=_export)

    p = sub.add_parser("predict", help="predict the emotion of every utterance of new conversations with a trained run")
    p.add_argument("--run", required=True, help="run directory written by lpgnet train")
    p.add_argument("--input", required=True, help="conversations: JSONL or CSV (features, or raw text / audio_path)")
    p.add_argument("--out", help="JSONL file to write (default: standard output)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument(
        "--shard",
        help="i/n: only the conversations at positions i mod n, into <out>.shard-i-of-n (then lpgnet merge); "
        "under torchrun each process takes one shard and rank 0 merges",
    )
    p.set_defaults(func=_predict)

    p = sub.add_parser("merge", help="merge the shards of lpgnet predict / extract --shard i/n into one output")
    p.add_argument("--out", required=True, help="the --out the shards were given (extract: its output path)")
    p.add_argument("--shards", type=int, required=True, help="n, the number of shards")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=_merge)

    p = sub.add_parser(
        "analyze",
        help="from recordings to emotions: find the utterances, speakers and words, then predict (offline)",
    )
    p.add_argument("recordings", nargs="+", help="audio / video files (wav, flac, mp3, mp4, ...) or folders of them")
    p.add_argument("--run", required=True, help="run directory written by lpgnet train")
    p.add_argument("--out", required=True, help="folder for <name>.jsonl/.csv/.png/.html and summary.json")
    p.add_argument("--segments", help="CSV of start,end,speaker[,text][,recording]: skips the stages it covers")
    p.add_argument("--speakers", type=int, help="number of speakers of a mono recording (default: estimated)")
    p.add_argument("--max-speakers", type=int, default=8, help="most speakers an estimate may find (default 8)")
    p.add_argument(
        "--speaker-threshold", type=float, default=0.3, help="cosine distance that keeps two voices apart (0.3)"
    )
    p.add_argument(
        "--channels",
        default="auto",
        choices=["auto", "split", "mix"],
        help="multi-channel files: one speaker per channel (split), channels mixed (mix), or decided (auto)",
    )
    p.add_argument("--asr-model", help="faster-whisper / CTranslate2 model folder (default: the packaged tiny.en)")
    p.add_argument("--language", default="en", help="spoken language ('' = detected; tiny.en is English only)")
    p.add_argument("--beam-size", type=int, default=1, help="speech recognition beam (default 1: greedy)")
    p.add_argument("--modalities", help="a subset of the run's modalities, e.g. 'text' (the rest count as missing)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs in --out")
    p.set_defaults(func=_analyze)

    p = sub.add_parser(
        "serve", help="serve a trained run over HTTP (JSON; whole conversations and incremental sessions)"
    )
    p.add_argument("--run", required=True, help="run directory written by lpgnet train")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-body-kb", type=int, default=2000, help="largest request body, KiB (default 2000)")
    p.add_argument("--max-utterances", type=int, default=500, help="most utterances per conversation or session")
    p.add_argument(
        "--max-sessions", type=int, default=MAX_SESSIONS, help="open incremental sessions kept (oldest dropped)"
    )
    p.add_argument("--max-audio-mb", type=int, default=50, help="largest recording or audio chunk, MB (default 50)")
    p.add_argument(
        "--max-audio-seconds", type=float, default=3600, help="longest recording or call, seconds (default 3600)"
    )
    p.add_argument("--modalities", help="for /analyze and /calls: a subset of the run's modalities, e.g. 'text'")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1; /calls needs 1)")
    p.add_argument(
        "--session-store",
        help="SQLite file for /sessions, shared by the workers (default: in memory, or a temporary file)",
    )
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.set_defaults(func=_serve)

    add_prepare_parser(sub)  # lpgnet prepare {iemocap,meld,table}: raw corpora -> JSONL
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
