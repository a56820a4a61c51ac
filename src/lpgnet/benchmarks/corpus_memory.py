"""Peak memory of ``lpgnet predict`` and ``lpgnet extract`` on a generated corpus of
IEMOCAP's size and of 20 times it: memory should not grow with the corpus.

IEMOCAP's shape: 151 dialogues of 66 utterances (9,966; the real corpus has 10,039).
``predict`` reads vectors of the built-in demo's sizes (64 text, 32 audio) with a
quickly trained demo run; ``extract`` embeds the texts with a tiny randomly initialised
BERT built here (the memory of the corpus, not of the encoder, is what is measured).
Each command runs in a fresh process, which samples its own resident memory every 20 ms:
before the command (after the imports) and the peak while it runs; the growth is what
the corpus costs. The files are written to a temporary folder and removed.

    python -m lpgnet.benchmarks.corpus_memory --out benchmarks/results/corpus_memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..files import write_json
from .envinfo import describe, environment

DIALOGUES, TURNS = 151, 66
WORDS = "i am so happy sad angry fine okay what why no yes great terrible today again".split()


def write_corpus(path: Path, scale: int, vectors: bool) -> int:
    rng = np.random.default_rng(0)
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for d in range(DIALOGUES * scale):
            for t in range(TURNS):
                row: dict[str, Any] = {"dialog_id": f"d{d}", "turn": t, "speaker": "AB"[t % 2]}
                if vectors:
                    row["text_emb"] = rng.normal(size=64).round(3).tolist()
                    row["audio_emb"] = rng.normal(size=32).round(3).tolist()
                else:
                    row["text"] = " ".join(WORDS[(d * 3 + t + j) % len(WORDS)] for j in range(6)) + f" {d} {t}"
                f.write(json.dumps(row) + "\n")
                n += 1
    return n


def tiny_bert(folder: Path) -> Path:
    import torch
    import transformers

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    transformers.BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(folder)
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    transformers.BertModel(cfg).save_pretrained(folder)
    return folder


CHILD = """
import os, sys, threading, time
from lpgnet.cli import main
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
base, peak, done = rss(), [rss()], threading.Event()
def watch():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.02)
threading.Thread(target=watch, daemon=True).start()
t = time.perf_counter()
code = main(sys.argv[1:])
done.set()
print("@@", code, time.perf_counter() - t, base, max(peak[0], rss()))
"""


def measured(args: list[str], cwd: Path) -> dict[str, float]:
    """Resident memory (MB) before the command (after its imports), the peak while it ran
    (sampled every 20 ms), and its seconds, of ``lpgnet ARGS`` in a fresh process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=cwd, env=env, capture_output=True, text=True)
    line = next((x for x in done.stdout.splitlines() if x.startswith("@@")), None)
    if done.returncode != 0 or line is None or line.split()[1] != "0":
        raise SystemExit(f"lpgnet {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    _, _, seconds, base, peak = line.split()
    return {"base_mb": int(base) / 2**20, "peak_mb": int(peak) / 2**20, "seconds": float(seconds)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--out", default="benchmarks/results/corpus_memory.json")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        from ..config import load_config
        from ..training.loop import train

        train(
            load_config("synthetic", ["train.epochs=2", "train.progress=false"]),
            out_dir=folder / "run",
            log=lambda m: None,
        )
        bert = tiny_bert(folder / "bert")
        for scale in args.scales:
            vectors, texts = folder / f"vectors-{scale}.jsonl", folder / f"texts-{scale}.jsonl"
            n = write_corpus(vectors, scale, vectors=True)
            write_corpus(texts, scale, vectors=False)
            for command, argv_ in (
                ("predict", ["predict", "--run", str(folder / "run"), "--input", str(vectors), "--out", str(folder / "p.jsonl"), "--overwrite"]),
                ("extract", ["extract", "--data", str(texts), "--text-encoder", str(bert), "--text-pooling", "mean",
                             "--out", str(folder / "f.jsonl"), "--overwrite", "--cache-dir", str(folder / f"cache-{scale}")]),
            ):  # fmt: skip
                t = time.perf_counter()
                row = {"command": command, "scale": scale, "utterances": n, **measured(argv_, folder)}
                row["input_mb"] = (vectors if command == "predict" else texts).stat().st_size / 2**20
                rows.append(row)
                print(
                    f"{command} x{scale} ({n:,} utterances, {row['input_mb']:.0f} MB): {row['base_mb']:.0f} MB "
                    f"before, peak {row['peak_mb']:.0f} MB, "
                    f"{row['seconds']:.0f} s ({time.perf_counter() - t:.0f} s with start-up)",
                    flush=True,
                )
    write_json(args.out, {"env": environment(), "rows": rows})
    print(f"written to {args.out}")


def render(data: dict[str, Any], file: Path) -> list[str]:
    """This benchmark's JSON as Markdown lines for the results page."""
    lines = [
        describe(data["env"]) + ".",
        "",
        "| command | corpus | utterances | input file, MB | memory before, MB | peak while running, MB | growth, MB | seconds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        lines.append(
            f"| lpgnet {r['command']} | {r['scale']} x IEMOCAP | {r['utterances']:,} | {r['input_mb']:.0f} | "
            f"{r['base_mb']:.0f} | {r['peak_mb']:.0f} | {r['peak_mb'] - r['base_mb']:.0f} | {r['seconds']:.0f} |"
        )
    lines.append("")
    return lines


if __name__ == "__main__":
    main()
