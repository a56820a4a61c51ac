"""Training, the run-directory contract, evaluate, and the command line."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import torch
import yaml

from lpgnet import load_config, train
from lpgnet.cli import main

SMALL = [
    "data.synthetic.train_dialogues=30",
    "data.synthetic.test_dialogues=10",
    "data.synthetic.max_turns=12",
    "data.synthetic.d_text=12",
    "data.synthetic.d_audio=6",
    "model.d_model=16",
    "model.heads=2",
    "train.epochs=3",
    "train.batch_size=8",
    "train.progress=false",
]


def small(*extra):
    return load_config("synthetic", SMALL + list(extra))


def test_run_directory_contract(tmp_path):
    out = tmp_path / "run"
    result = train(small(), out_dir=out)
    names = {p.name for p in out.iterdir()}
    assert {
        "config.yaml",
        "model.safetensors",
        "metrics.json",
        "log.csv",
        "training_curves.png",
        "confusion_matrix.png",
    } <= names
    assert not [n for n in names if n.endswith(".tmp")]
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"valid", "test", "best_epoch", "seed", "params"} <= set(metrics)
    for split in ("valid", "test"):
        assert {
            "accuracy",
            "weighted_f1",
            "macro_f1",
            "uar",
            "ova_accuracy",
            "ova_f1",
            "per_class",
            "confusion_matrix",
            "labels",
        } <= set(metrics[split])
    assert metrics["params"] == result.model.num_parameters() and 1 <= metrics["best_epoch"] <= 3
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["model"]["d_text"] == 12 and resolved["model"]["num_classes"] == 6
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert len(rows) == 3 and {"train_total", "train_kl_text", "valid_accuracy", "seconds"} <= set(rows[0])
    for png in ("training_curves.png", "confusion_matrix.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_evaluate_reproduces_the_saved_test_figures(tmp_path, capsys):
    out = tmp_path / "run"
    train(small("model.kernel_size=3"), out_dir=out)
    assert main(["evaluate", "--run", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("test: acc ") and "metrics.json: yes" in printed
    from lpgnet import evaluate_run

    result = evaluate_run(out)
    saved = json.loads((out / "metrics.json").read_text())["test"]
    assert result["matches_saved"] is True
    assert result["metrics"]["confusion_matrix"] == saved["confusion_matrix"]
    assert result["metrics"]["accuracy"] == saved["accuracy"]


def test_evaluate_changes_data_only(tmp_path, capsys):
    out = tmp_path / "run"
    train(small(), out_dir=out)
    assert main(["evaluate", "--run", str(out), "--set", "model.d_model=8"]) == 2
    assert "can only change data.* fields" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(out), "--set", "data.synthetic.seed=99", "--split", "test"]) == 0


def test_same_seed_same_metrics_other_seed_differs():
    a = train(small()).metrics["test"]
    b = train(small()).metrics["test"]
    c = train(small("train.seed=1")).metrics["test"]
    assert a == b
    assert a["confusion_matrix"] != c["confusion_matrix"]


@pytest.mark.parametrize(
    "switches",
    [
        ["train.patience=1", "train.epochs=8"],
        ["train.class_weights=balanced", "train.optimizer=adamw", "train.grad_clip=1.0"],
        ["train.bucket_by_length=false", "data.standardize=false", "data.valid_seed=5"],
        ["loss.gamma1=1.0", "loss.gamma2=0.0", "loss.gamma3=1.0", "loss.tau=2.0", "loss.detach_teacher=false"],
        ["model.modalities=[audio]", "train.select_metric=uar"],
    ],
    ids=["early-stop", "weights-adamw-clip", "no-bucket-no-standardize", "gammas-tau", "audio-only"],
)
def test_training_switches_run(switches):
    result = train(small(*switches))
    assert 0.0 <= result.metrics["test"]["accuracy"] <= 1.0
    if "train.patience=1" in switches:
        assert result.metrics["epochs_run"] < 8


def test_linear_baseline_trains_with_the_same_trainer():
    data_only = [s for s in SMALL if not s.startswith("model.")]
    result = train(load_config("synthetic-linear", data_only))
    assert result.metrics["model"] == "linear" and result.metrics["params"] == (12 + 6) * 6 + 6


def test_existing_run_is_not_overwritten(tmp_path, capsys):
    out = tmp_path / "run"
    train(small(), out_dir=out)
    before = (out / "metrics.json").read_bytes()
    assert main(["train", "--out", str(out), *[a for s in SMALL for a in ("--set", s)]]) == 2
    err = capsys.readouterr().err
    assert "finished run" in err and "--overwrite" in err
    assert (out / "metrics.json").read_bytes() == before
    assert main(["train", "--out", str(out), "--overwrite", *[a for s in SMALL for a in ("--set", s)]]) == 0


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "--out", "{tmp}/r", "--config", "{tmp}/missing.yaml"], "missing.yaml: config file not found"),
        (["train", "--out", "{tmp}/r", "--set", "model.d_modle=8"], "unknown key 'model.d_modle'"),
        (
            ["train", "--out", "{tmp}/r", "--set", "model.d_text=99", "--set", "train.epochs=1"],
            "the data has text feature dimension 64, but config model.d_text is 99",
        ),
        (["evaluate", "--run", "{tmp}/nothing"], "run directory not found"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, args, message):
    assert main([a.format(tmp=tmp_path) for a in args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    # the error is one line, the last; only the run's own log lines (its budget) may come before it
    assert lines[-1].startswith("error: ") and message in lines[-1]
    assert all(not line.startswith(("error", "Traceback")) for line in lines[:-1]) and len(lines) <= 2
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_console_script_prints_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "lpgnet.cli", "train", "--out", str(tmp_path / "r"), "--set", "train.lr=fast"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "train.lr: expected float" in proc.stderr


@pytest.mark.slow
def test_default_run_beats_a_context_free_linear_model(tmp_path):
    """The built-in data rewards dialogue context: LPGNet (default preset) must score far
    above chance (1/6) and clearly above the context-free linear baseline. Figures and
    wall time: python -m lpgnet.benchmarks.synthetic_default."""
    lpg = train(load_config("synthetic", ["train.progress=false"])).metrics["test"]["accuracy"]
    lin = train(load_config("synthetic-linear", ["train.progress=false"])).metrics["test"]["accuracy"]
    assert lpg > 0.6 > 1 / 6
    assert lpg > lin + 0.05


def test_modality_dropout_never_drops_both_and_trains():
    import numpy as np
    import torch

    from lpgnet.training.loop import drop_modalities

    t, a = torch.zeros(64, 50, 3), torch.zeros(64, 50, 2)
    dt, da = drop_modalities(t, a, 0.3, np.random.default_rng(0))
    lost_t, lost_a = torch.isnan(dt).all(-1), torch.isnan(da).all(-1)
    assert not (lost_t & lost_a).any()
    assert 0.25 < lost_t.float().mean() < 0.35 and 0.25 < lost_a.float().mean() < 0.35
    assert drop_modalities(t, a, 0.0, np.random.default_rng(0)) == (t, a)  # off: untouched


def test_runs_score_the_test_split_without_each_modality(tmp_path):
    cfg = load_config(
        None,
        [
            "model.d_model=16",
            "model.heads=2",
            "train.epochs=2",
            "train.progress=false",
            "train.modality_dropout=0.2",
            "data.synthetic.train_dialogues=20",
            "data.synthetic.test_dialogues=6",
        ],
    )
    metrics = train(cfg, log=lambda m: None).metrics
    for m in ("text", "audio"):
        assert 0.0 <= metrics[f"test_without_{m}"]["accuracy"] <= 1.0
    assert (
        metrics["test_without_audio"]["accuracy"] != metrics["test"]["accuracy"]
        or metrics["test_without_text"]["accuracy"] != metrics["test"]["accuracy"]
    )
    one = train(
        load_config(
            None,
            [
                "model.d_model=16",
                "model.heads=2",
                "train.epochs=1",
                "train.progress=false",
                "model.modalities=[text]",
                "data.synthetic.train_dialogues=12",
            ],
        ),
        log=lambda m: None,
    )
    assert not any(k.startswith("test_without") for k in one.metrics)  # nothing to remove from a unimodal model


def test_device_is_where_training_runs_not_part_of_the_result(tmp_path, capsys):
    import torch

    from lpgnet.errors import ConfigError
    from lpgnet.training.setup import resolve_device

    a = train(small(), device="cpu")
    assert a.metrics["device"] == "cpu" and a.metrics["test"] == train(small()).metrics["test"]
    assert next(a.model.parameters()).device.type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="expected cpu, cuda, cuda:N or auto"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="sees no CUDA GPU"):
            train(small(), device="cuda")
        # refused before any data is built or anything is written
        assert main(["train", "--device", "cuda", "--out", str(tmp_path / "r")]) == 2
        assert "sees no CUDA GPU" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_a_weight_average_is_what_is_scored_and_saved(tmp_path):
    """train.ema: the exponential moving average of the weights is selected, saved and
    re-scored, not the raw weights it averages."""
    from lpgnet import ConfigError, evaluate_run

    quick = [
        "train.epochs=2",
        "train.progress=false",
        "train.batch_size=4",
        "model.d_model=16",
        "model.heads=2",
        "data.synthetic.train_dialogues=20",
        "data.synthetic.test_dialogues=6",
    ]
    run = train(load_config(None, [*quick, "train.ema=0.9"]), out_dir=tmp_path / "ema", log=lambda m: None)
    assert evaluate_run(tmp_path / "ema")["matches_saved"]
    plain = train(load_config(None, quick), log=lambda m: None)
    kept, raw = run.model.state_dict(), plain.model.state_dict()  # same seed, same batches: only the average differs
    assert any(not torch.equal(kept[k], raw[k]) for k in raw if kept[k].is_floating_point())
    with pytest.raises(ConfigError, match="train.ema"):
        load_config(None, ["train.ema=1.5"])


def test_the_size_and_epoch_budget_are_said_before_any_data_is_built(monkeypatch):
    import lpgnet.training.loop as loop

    said: list[str] = []

    def no_data(cfg, log=None):
        raise RuntimeError("stop here")

    monkeypatch.setattr(loop, "load_data", no_data)
    with pytest.raises(RuntimeError, match="stop here"):
        train(load_config(None, ["train.epochs=7", "train.patience=2"]), log=said.append)
    assert said == [
        f"lpgnet d_model 768: up to 7 epochs, stopping 2 epochs after the best, batch 32, epoch chosen on validation; "
        f"torch threads {torch.get_num_threads()} (train.threads to change)"
    ]


def test_experiment_threads_apply_before_the_data_is_built(monkeypatch, tmp_path):
    import lpgnet.experiments.runner as runner

    before, seen = torch.get_num_threads(), []

    def spy(cfg, log=None):
        seen.append(torch.get_num_threads())
        raise RuntimeError("stop here")

    monkeypatch.setattr(runner, "load_data", spy)
    try:
        with pytest.raises(RuntimeError, match="stop here"):
            runner.run_experiment(load_config(None, ["train.threads=2"]), tmp_path, [0])
        assert seen == [2]
    finally:
        torch.set_num_threads(before)


def test_long_dialogues_train_and_score_as_windows_counting_each_utterance_once(tmp_path):
    from lpgnet.data.conversation import IGNORE
    from lpgnet.training.setup import as_items, load_data

    cfg = load_config(None, [*SMALL, "data.context_window=5"])
    bundle = load_data(cfg)
    items = as_items(cfg, bundle.splits["test"])
    assert max(len(it.labels) for it in items) == 5 < max(len(d) for d in bundle.splits["test"])
    labelled = sum(int((d.labels != IGNORE).sum()) for d in bundle.splits["test"])
    result = train(cfg, out_dir=tmp_path / "run", log=lambda m: None)
    assert sum(map(sum, result.metrics["test"]["confusion_matrix"])) == labelled


def test_a_training_batch_never_holds_more_utterance_slots_than_the_bound():
    import numpy as np

    from lpgnet.registry import build_model
    from lpgnet.training.loop import train_epoch
    from lpgnet.training.setup import as_items, load_data, resolve_model_config

    cfg = load_config(None, [*SMALL, "data.context_window=6", "train.max_batch_utterances=20"])
    bundle = load_data(cfg)
    resolve_model_config(cfg, bundle)
    model = build_model(cfg.model)
    sizes = []
    model.register_forward_hook(lambda m, args, out: sizes.append(args[0].shape[0] * args[0].shape[1]))
    opt = torch.optim.Adam(model.parameters())
    train_epoch(model, as_items(cfg, bundle.splits["train"]), cfg, opt, np.random.default_rng(0))
    assert max(sizes) <= 20
