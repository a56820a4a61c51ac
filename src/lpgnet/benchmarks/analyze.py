"""``lpgnet analyze`` measured: the real-time factor of every stage on this CPU, and how
well recordings are cut into utterances, on generated conversations with known turns.

Conversations come from ``lpgnet.recordings.synthetic`` (espeak-ng voices reading known
sentences; seeds 0..N-1 of each condition): mono with two voices, with 30 % of turns
overlapping, with three voices, and stereo (one voice per channel) with overlap. Each
is analysed with the given run (``--run``; the recipe is configs/iemocap/lpgnet-text.yaml)
and scored against its truth (``lpgnet.recordings.quality``): boundary error, missed and
extra utterances, speaker accuracy (estimated number of speakers, and told it with
``--speakers``), word error rate. Real-time factor = compute seconds of a stage per
second of audio, stages loaded beforehand (load times are reported apart), one thread.
The speaker threshold is chosen first, on conversations of other seeds (``--tune-seeds``).
``--long-minutes`` also analyses one recording that long (a conversation repeated) in a
fresh process and reports its peak memory beside a single conversation's.

    python -m lpgnet.benchmarks.analyze --run runs/iemocap-text --out benchmarks/results/analyze.json
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..files import write_json
from ..recordings.audio import Recording
from ..recordings.quality import score
from ..recordings.segments import Segment
from ..recordings.speakers import assign_speakers
from ..recordings.synthetic import make_conversation
from ..serving.analyze import STAGES, AnalyzeConfig, Analyzer
from ..serving.predict import Predictor
from .envinfo import describe, environment

# (name, voices, channels, share of overlapping turns)
CONDITIONS = (
    ("mono, 2 voices", 2, 1, 0.0),
    ("mono, 2 voices, 30 % overlap", 2, 1, 0.3),
    ("mono, 3 voices", 3, 1, 0.0),
    ("stereo, 2 voices, 30 % overlap", 2, 2, 0.3),
)


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def measure_condition(
    analyzer: Analyzer, folder: Path, name: str, voices: int, channels: int, overlap: float, seeds: int, turns: int
) -> dict[str, Any]:
    scores, known, clock, audio = [], [], dict.fromkeys(STAGES, 0.0), 0.0
    for seed in range(seeds):
        path = folder / f"{name.replace(' ', '_').replace(',', '').replace('%', 'pc')}-{seed}.wav"
        truth = make_conversation(path, turns=turns, speakers=voices, channels=channels, overlap=overlap, seed=seed)
        rows, summary = analyzer.analyze(path)
        found = [Segment(r["start"], r["end"], r["speaker"], r["text"]) for r in rows]
        scores.append(score(truth, found))
        audio += summary["seconds"]
        for k, v in summary["stage_seconds"].items():
            clock[k] += v
        if channels == 1 and voices > 1:  # the same segments, the number of speakers given
            told = [Segment(s.start, s.end, "", s.text) for s in found]
            with Recording(path) as rec:
                cfg = replace(analyzer.cfg.speakers, speakers=voices)
                assign_speakers(rec, told, cfg, False, analyzer.speaker_encoder)
            known.append(score(truth, told)["speaker_accuracy"])
    row: dict[str, Any] = {
        "condition": name,
        "voices": voices,
        "channels": channels,
        "overlap": overlap,
        "conversations": seeds,
        "audio_seconds": round(audio, 1),
        "utterances": int(sum(s["utterances"] for s in scores)),
        "missed": int(sum(s["missed"] for s in scores)),
        "extra": int(sum(s["extra"] for s in scores)),
        "boundary_error_s": _mean([s["boundary_error_s"] for s in scores]),
        "speaker_accuracy": _mean([s["speaker_accuracy"] for s in scores]),
        "speaker_accuracy_told_n": _mean(known) if known else None,
        "wer": _mean([s.get("wer") for s in scores]),
        "stage_seconds": clock,
        "real_time_factor": {k: v / audio for k, v in clock.items()},
    }
    return row


def _peak_rss(run: str, path: str, modalities: list[str] | None, queue: Any) -> None:  # in a fresh process
    torch.set_num_threads(1)
    analyzer = Analyzer(Predictor.from_run(run), AnalyzeConfig(modalities=modalities))
    analyzer.load()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    rows, summary = analyzer.analyze(path)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({"seconds": summary["seconds"], "utterances": len(rows), "rss_loaded_mb": before / 1024,
               "rss_peak_mb": peak / 1024, "wall_s": time.perf_counter() - t})  # fmt: skip


def measure_long(run: str, modalities: list[str] | None, folder: Path, minutes: float) -> list[dict[str, Any]]:
    """Peak memory analysing one conversation, and the same conversation repeated for ``minutes``."""
    import soundfile as sf

    short = folder / "long-base.wav"
    make_conversation(short, turns=12, speakers=2, seed=0)
    wave, rate = sf.read(short, dtype="int16")
    long = folder / "long.wav"
    sf.write(long, np.tile(wave, int(np.ceil(minutes * 60 * rate / len(wave)))), rate, subtype="PCM_16")
    ctx = multiprocessing.get_context("spawn")
    out = []
    for path in (short, long):
        queue = ctx.Queue()
        p = ctx.Process(target=_peak_rss, args=(run, str(path), modalities, queue))
        p.start()
        out.append(queue.get())
        p.join()
    return out


def tune_threshold(folder: Path, seeds: list[int], thresholds: list[float], turns: int) -> list[dict[str, Any]]:
    """Speaker accuracy of the mono conditions at each clustering threshold, on seeds kept
    apart from the measured ones (how ``SpeakerConfig.threshold`` was chosen)."""
    from ..recordings.speakers import SpeakerConfig, SpeakerEncoder
    from ..recordings.vad import VadConfig, load_vad, speech_segments

    encoder, vad, cases = SpeakerEncoder(), load_vad(), []
    for seed in seeds:
        for name, voices, channels, overlap in CONDITIONS:
            if channels == 1:
                path = folder / f"tune-{seed}-{voices}-{overlap}.wav"
                truth = make_conversation(path, turns=turns, speakers=voices, overlap=overlap, seed=seed)
                with Recording(path) as rec:
                    cases.append((name, path, truth, speech_segments(rec, vad, VadConfig())))
    rows = []
    for threshold in thresholds:
        accuracy: dict[str, list[float]] = {}
        for name, path, truth, segments in cases:
            found = [Segment(s.start, s.end) for s in segments]
            with Recording(path) as rec:
                assign_speakers(rec, found, SpeakerConfig(threshold=threshold), False, encoder)
            accuracy.setdefault(name, []).append(score(truth, found)["speaker_accuracy"])
        row = {"threshold": threshold, **{k: float(np.mean(v)) for k, v in accuracy.items()}}
        row["mean"] = float(np.mean([row[k] for k in accuracy]))
        rows.append(row)
        print(f"threshold {threshold}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if k != "threshold"))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="run directory (configs/iemocap/lpgnet-text.yaml's)")
    parser.add_argument("--modalities", help="as lpgnet analyze --modalities")
    parser.add_argument("--seeds", type=int, default=3, help="conversations per condition")
    parser.add_argument("--turns", type=int, default=12, help="turns per conversation")
    parser.add_argument("--long-minutes", type=float, default=0, help="also measure memory on a recording this long")
    parser.add_argument("--out", default="benchmarks/results/analyze.json")
    parser.add_argument(
        "--tune-seeds", type=int, nargs="*", default=[100, 101, 102], help="seeds of the threshold choice (none: skip)"
    )
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.25, 0.3, 0.35, 0.4, 0.45, 0.5])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tuning = tune_threshold(Path(tmp), args.tune_seeds, args.thresholds, args.turns) if args.tune_seeds else []
    modalities = args.modalities.split(",") if args.modalities else None
    analyzer = Analyzer(Predictor.from_run(args.run), AnalyzeConfig(modalities=modalities))
    load = analyzer.load()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, voices, channels, overlap in CONDITIONS:
            row = measure_condition(analyzer, Path(tmp), name, voices, channels, overlap, args.seeds, args.turns)
            rows.append(row)
            rtf = sum(row["real_time_factor"].values())
            print(
                f"{name}: boundary {row['boundary_error_s']:.3f} s, speakers {row['speaker_accuracy']:.3f}, "
                f"WER {row['wer']:.3f}, missed {row['missed']}/{row['utterances']}, real-time factor {rtf:.3f}",
                flush=True,
            )
        long = measure_long(args.run, modalities, Path(tmp), args.long_minutes) if args.long_minutes else []
    for r in long:
        print(f"{r['seconds'] / 60:.1f} min: peak RSS {r['rss_peak_mb']:.0f} MB (loaded {r['rss_loaded_mb']:.0f} MB)")
    report = {
        "env": environment(),
        "threads": 1,
        "run": args.run,
        "modalities": list(analyzer.use),
        "turns": args.turns,
        "load_seconds": load,
        "rows": rows,
        "long": long,
        "tune_seeds": args.tune_seeds,
        "threshold_tuning": tuning,
        "threshold": analyzer.cfg.speakers.threshold,
    }
    write_json(args.out, report)
    print(f"written to {args.out}")


def render(data: dict[str, Any], file: Path) -> list[str]:
    """This benchmark's JSON as Markdown lines for the results page."""
    lines = [
        describe(data["env"]) + f"; run `{data['run']}` ({', '.join(data['modalities'])}); "
        f"{data['rows'][0]['conversations']} generated conversations of {data['turns']} turns per condition.",
        "",
        "| condition | audio, s | boundary error, s | missed / extra of utterances | speaker accuracy "
        "(estimated N / told N) | WER |",
        "|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        told = "" if r["speaker_accuracy_told_n"] is None else f" / {r['speaker_accuracy_told_n']:.3f}"
        lines.append(
            f"| {r['condition']} | {r['audio_seconds']:.0f} | {r['boundary_error_s']:.3f} | "
            f"{r['missed']} / {r['extra']} of {r['utterances']} | {r['speaker_accuracy']:.3f}{told} | {r['wer']:.3f} |"
        )
    stages = list(data["rows"][0]["real_time_factor"])
    lines += [
        "",
        "Real-time factor (compute seconds per second of audio; lower is faster, 1 = as long as the audio):",
        "",
        "| condition | " + " | ".join(stages) + " | all |",
        "|---|" + "---|" * (len(stages) + 1),
    ]
    for r in data["rows"]:
        f = r["real_time_factor"]
        lines.append(
            f"| {r['condition']} | " + " | ".join(f"{f[s]:.3f}" for s in stages) + f" | {sum(f.values()):.3f} |"
        )
    lines += [
        "",
        "Loading, once per process: " + ", ".join(f"{k} {v:.1f} s" for k, v in data["load_seconds"].items()) + ".",
    ]
    for r in data.get("long", []):
        lines.append(
            f"A {r['seconds'] / 60:.1f}-minute recording ({r['utterances']} utterances): peak memory "
            f"{r['rss_peak_mb']:.0f} MB, {r['rss_loaded_mb']:.0f} MB after loading the stages."
        )
    if data.get("threshold_tuning"):
        tuned = data["threshold_tuning"]
        names = [k for k in tuned[0] if k not in ("threshold", "mean")]
        lines += [
            "",
            f"Choosing the speaker threshold (the analysis above used {data['threshold']}): speaker accuracy with "
            f"the number of speakers estimated, on other generated conversations (seeds "
            f"{', '.join(map(str, data['tune_seeds']))}):",
            "",
            "| threshold | " + " | ".join(names) + " | mean |",
            "|---|" + "---|" * (len(names) + 1),
        ]
        lines += [
            f"| {r['threshold']} | " + " | ".join(f"{r[k]:.3f}" for k in names) + f" | {r['mean']:.3f} |" for r in tuned
        ]
    lines.append("")
    return lines


if __name__ == "__main__":
    main()
