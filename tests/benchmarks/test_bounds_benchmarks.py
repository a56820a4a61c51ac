"""The threads and long-dialogue benchmarks: each measures what it says on a small case,
and renders its JSON for the results page."""

from __future__ import annotations

from pathlib import Path

from lpgnet.benchmarks import dialogue_memory, threads
from lpgnet.benchmarks.envinfo import environment


def test_dialogue_memory_measures_prediction_and_training_with_and_without_bounds():
    bounded = dialogue_memory.measure(16, 40, 16, True, 1)
    unbounded = dialogue_memory.measure(16, 40, None, False, 1)
    assert bounded["predict_s"] > 0 and bounded["train_epoch_s"] > 0 and bounded["train_peak_mb"] >= 0
    assert "train_epoch_s" not in unbounded
    lines = dialogue_memory.render(
        {"env": environment(), "threads": 1, "rows": [bounded, unbounded]}, Path("dialogue_memory.json")
    )
    assert any("| 16 | 40 | window 16, batch 8192 |" in line for line in lines)
    assert any("| 16 | 40 | none |" in line and "not run (memory)" in line for line in lines)


def test_threads_times_a_real_epoch_and_renders_the_ratio():
    seconds = threads.epoch_seconds(16, 1, 1, 8)
    assert seconds > 0
    rows = [
        {"busy": b, "width": 16, "threads": t, "epoch_s": seconds * (1 + t + 3 * b), "load": 0.5}
        for b in (False, True)
        for t in (1, 2)
    ]
    lines = threads.render({"env": environment(), "cores": 2, "rows": rows}, Path("threads.json"))
    assert any(line.startswith("| quiet, load 0.5 | 16 |") and line.endswith("| 1.50 |") for line in lines)
    assert any(line.startswith("| busy (2 spinning processes)") for line in lines)


def test_the_scale_benchmark_renders_one_row_per_process_count():
    from lpgnet.benchmarks import scale

    rows = [{"processes": n, "epoch_s": 2.0 / n, "extract_utterances_per_s": 100.0 * n, "requests_per_s": 80.0 * n,
             "p50_ms": 40.0 / n, "server_errors": 0} for n in (1, 2)]  # fmt: skip
    data = {"env": environment(), "cores": 2, "args": {"utterances": 10, "seconds": 5.0}, "rows": rows}
    lines = scale.render(data, Path("scale.json"))
    assert "| 1 | 2.00 | 100.0 | 80.0 | 40.0 |" in lines and "| 2 | 1.00 | 200.0 | 160.0 | 20.0 |" in lines


def test_the_corpus_memory_benchmark_writes_iemocap_shaped_corpora_and_renders_growth(tmp_path):
    from lpgnet.benchmarks import corpus_memory

    corpus = tmp_path / "c.jsonl"
    assert corpus_memory.write_corpus(corpus, 1, vectors=False) == 151 * 66
    row = {"command": "predict", "scale": 1, "utterances": 9966, "input_mb": 7.0, "base_mb": 200.0, "peak_mb": 230.0,
           "seconds": 2.0}  # fmt: skip
    lines = corpus_memory.render({"env": environment(), "rows": [row]}, Path("corpus_memory.json"))
    assert "| lpgnet predict | 1 x IEMOCAP | 9,966 | 7 | 200 | 230 | 30 | 2 |" in lines


def test_scale_md_shows_the_measured_json():
    """docs/SCALE.md quotes benchmarks/results/scale.json: rerunning the benchmark without
    updating the page fails here."""
    import json

    root = Path(__file__).resolve().parents[2]
    data = json.loads((root / "benchmarks" / "results" / "scale.json").read_text())
    page = (root / "docs" / "SCALE.md").read_text()
    for r in data["rows"]:
        row = f"| {r['processes']} | {r['epoch_s']:.2f} | {r['extract_utterances_per_s']:.0f} | {r['requests_per_s']:.0f} |"
        assert row in page, row
