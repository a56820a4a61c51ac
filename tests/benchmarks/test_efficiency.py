"""``lpgnet bench``: the JSON has the documented shape and its figures are measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lpgnet.benchmarks.efficiency import bench_model, epoch_seconds, run_config
from lpgnet.benchmarks.efficiency import render as render_bench
from lpgnet.cli import main
from lpgnet.registry import build_model

CONFIGS = Path("configs/iemocap")


def test_bench_writes_the_documented_json_and_plot(tmp_path):
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "--out",
                str(out),
                "--models",
                "lpgnet,sdt",
                "--lengths",
                "4,50",
                "--threads",
                "1",
                "--no-epoch",
                "--data",
                str(tmp_path / "absent.jsonl"),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert report["env"]["threads"] == 1 and report["env"]["torch"] == torch.__version__ and report["env"]["cpu"]
    # the machine's matmul reference, so figures from different times can be compared
    assert report["env"]["matmul_gflops_start"] > 0 and report["env"]["matmul_gflops_end"] > 0
    head = render_bench(report, out)[0]
    assert f"fp32 matmul {report['env']['matmul_gflops_start']:.0f} GFLOP/s at the start" in head
    for key in ("models", "models_iemocap"):
        for name in ("lpgnet", "sdt"):
            m = report[key][name]
            assert isinstance(m["params"], int) and m["params"] > 0
            assert set(m["flops"]) == set(m["latency_ms"]) == {"4", "50"}
            assert m["flops"]["50"] > m["flops"]["4"] > 0  # longer dialogues cost more
            assert all(v > 0 for v in m["latency_ms"].values()) and m["throughput_utt_s"] > 0
            assert m["peak_mem_mb"] > 0
            assert set(m["latency_ms_onnxruntime"]) == {"4", "50"}  # the exported graph, timed beside eager
    # equal width: the paper-size models are both d = 768
    assert report["models"]["lpgnet"]["d_model"] == report["models"]["sdt"]["d_model"] == 768
    r = report["ratios"]["models"]
    assert r["params_lpgnet_over_sdt"] == report["models"]["lpgnet"]["params"] / report["models"]["sdt"]["params"]
    assert (tmp_path / "bench.png").stat().st_size > 1000


def test_flops_grow_with_width_and_parameters_match_the_model():
    small = bench_model("transformer", "iemocap", CONFIGS, [8], None, memory=False)
    big = bench_model("transformer", "paper", CONFIGS, [8], None, memory=False)
    assert big["flops"]["8"] > small["flops"]["8"] > 0  # the fused inference path is counted too
    cfg = run_config("transformer", "paper", CONFIGS)
    assert big["params"] == build_model(cfg.model).num_parameters()


def test_epoch_timing_runs_the_real_training_loop():
    cfg = run_config("lpgnet", "iemocap", CONFIGS)
    cfg.model.d_model = 16
    torch.manual_seed(0)
    model = build_model(cfg.model)
    before = [p.detach().clone() for p in model.parameters()]
    assert epoch_seconds(cfg, model, [5, 7, 9, 4], {"text": 384, "audio": 4}) > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # it trained


@pytest.mark.parametrize(
    "args,msg", [(["--models", "lpgnet,bogus"], "unknown model 'bogus'"), (["--lengths", "10,x"], "--lengths")]
)
def test_bench_arguments_are_checked(tmp_path, capsys, args, msg):
    assert main(["bench", "--out", str(tmp_path / "b.json"), *args]) == 2
    assert msg in capsys.readouterr().err and not (tmp_path / "b.json").exists()
