"""Multi-seed experiments, leave-one-group-out folds, reuse of finished runs."""

from __future__ import annotations

import json
import statistics

import pytest

from lpgnet import ConfigError, DataError, RunDirError, load_config
from lpgnet.cli import main
from lpgnet.data.jsonl import load_jsonl_bundle
from lpgnet.experiments import runner as exp_mod
from lpgnet.experiments.runner import parse_seeds, run_experiment

QUICK = [
    "train.epochs=2",
    "train.progress=false",
    "model.d_model=16",
    "model.heads=2",
    "data.synthetic.train_dialogues=20",
    "data.synthetic.test_dialogues=6",
    "data.synthetic.d_text=8",
    "data.synthetic.d_audio=4",
]


def test_parse_seeds():
    assert parse_seeds("3") == [0, 1, 2]
    assert parse_seeds("2-4") == [2, 3, 4]
    assert parse_seeds("0,5,9") == [0, 5, 9]
    for bad in ("0", "5-3", "1,1", "x"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)


def test_experiment_summary_is_the_mean_and_std_of_the_seed_runs(tmp_path, monkeypatch):
    cfg = load_config("synthetic", QUICK)
    summary = run_experiment(cfg, tmp_path / "e", [0, 1, 2], log=lambda m: None)
    accs = [r["test"]["accuracy"] for r in summary["runs"]]
    assert [r["seed"] for r in summary["runs"]] == [0, 1, 2]
    assert summary["test"]["accuracy"]["mean"] == pytest.approx(statistics.fmean(accs))
    assert summary["test"]["accuracy"]["std"] == pytest.approx(statistics.stdev(accs))
    assert summary["test"]["per_class"]["neu"]["f1"]["n"] == 3
    for seed in (0, 1, 2):  # each seed is an ordinary finished run directory
        saved = json.loads((tmp_path / "e" / f"seed-{seed}" / "metrics.json").read_text())
        assert saved["seed"] == seed
    assert json.loads((tmp_path / "e" / "summary.json").read_text())["test"] == summary["test"]

    # resuming reuses finished seeds and trains only the new one
    calls = []
    real = exp_mod.train
    monkeypatch.setattr(exp_mod, "train", lambda *a, **k: calls.append(k["out_dir"]) or real(*a, **k))
    again = run_experiment(cfg, tmp_path / "e", [0, 1, 2, 3], log=lambda m: None)
    assert calls == [tmp_path / "e" / "seed-3"]
    assert again["runs"][:3] == summary["runs"]

    # a finished seed with another config is never silently mixed in
    other = load_config("synthetic", QUICK + ["model.dropout=0.3"])
    with pytest.raises(RunDirError, match="different config"):
        run_experiment(other, tmp_path / "e", [0], log=lambda m: None)


def test_runs_of_an_earlier_summary_are_reused_without_their_run_directories(tmp_path, monkeypatch):
    """``reuse``: a row finished across machines keeps the runs another machine trained."""
    import shutil

    cfg = load_config("synthetic", QUICK)
    first = run_experiment(cfg, tmp_path / "a", [0, 1], log=lambda m: None)
    assert all("data_sha256" in r for r in first["runs"])
    shutil.rmtree(tmp_path / "a")  # another machine: no run directories, only the summary
    calls = []
    real = exp_mod.train
    monkeypatch.setattr(exp_mod, "train", lambda *a, **k: calls.append(k["out_dir"]) or real(*a, **k))
    both = run_experiment(cfg, tmp_path / "b", [0, 1, 2], log=lambda m: None, reuse=first)
    assert calls == [tmp_path / "b" / "seed-2"]  # seeds 0 and 1 come from the summary
    assert both["runs"][:2] == first["runs"] and both["test"]["accuracy"]["n"] == 3
    # another config, other data, or runs from before the fingerprint was kept: trained again
    calls.clear()
    run_experiment(
        load_config("synthetic", QUICK + ["model.dropout=0.3"]), tmp_path / "c", [0], log=lambda m: None, reuse=first
    )
    other_data = {**first, "runs": [{**r, "data_sha256": "elsewhere"} for r in first["runs"]]}
    run_experiment(cfg, tmp_path / "d", [0], log=lambda m: None, reuse=other_data)
    old = {**first, "runs": [{k: v for k, v in r.items() if k != "data_sha256"} for r in first["runs"]]}
    run_experiment(cfg, tmp_path / "e", [0], log=lambda m: None, reuse=old)
    assert calls == [tmp_path / "c" / "seed-0", tmp_path / "d" / "seed-0", tmp_path / "e" / "seed-0"]


def test_reuse_names_a_bad_summary_file(tmp_path, capsys):
    bad = tmp_path / "s.json"
    bad.write_text('{"runs": 3}')
    assert (
        main(["experiment", "--config", "synthetic", "--seeds", "1", "--out", str(tmp_path / "x"), "--reuse", str(bad)])
        == 2
    )
    assert "s.json: not an experiment summary" in capsys.readouterr().err
    assert (
        main(
            [
                "experiment",
                "--config",
                "synthetic",
                "--seeds",
                "1",
                "--out",
                str(tmp_path / "x"),
                "--reuse",
                str(tmp_path / "none.json"),
            ]
        )
        == 2
    )
    assert "none.json: cannot read" in capsys.readouterr().err


def write_grouped(tmp_path, groups=(1, 1, 2, 2, 3, 3)):
    rows = []
    for d, g in enumerate(groups):
        for t in range(3):
            rows.append(
                {
                    "dialog_id": f"d{d}",
                    "turn": t,
                    "session": g,
                    "label": ["a", "b"][(d + t) % 2],
                    "af": [float((d + t) % 2), 1.0],
                }
            )
    path = tmp_path / "g.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_leave_one_session_out_protocol(tmp_path):
    path = write_grouped(tmp_path)
    bundle = load_jsonl_bundle(path, None, "loso-2", "label", ["a", "b"], {"text": None, "audio": "af"})
    assert sorted(d.dialog_id for d in bundle.splits["test"]) == ["d2", "d3"]
    assert sorted(d.dialog_id for d in bundle.splits["train"]) == ["d0", "d1", "d4", "d5"]
    with pytest.raises(DataError, match=r"no dialogue has session '7' \(found: 1, 2, 3\)"):
        load_jsonl_bundle(path, None, "loso-7", "label", ["a", "b"], {"text": None, "audio": "af"})
    with pytest.raises(DataError, match="needs a splits file"):
        load_jsonl_bundle(path, None, "session5", "label", ["a", "b"], {"text": None, "audio": "af"})


def test_leave_one_out_needs_one_group_per_dialogue(tmp_path):
    path = write_grouped(tmp_path)
    lines = path.read_text().splitlines()
    row = json.loads(lines[1])
    row["session"] = 9
    lines[1] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"g.jsonl:2: field 'session': dialogue 'd0' has both '1' and '9'"):
        load_jsonl_bundle(path, None, "loso-1", "label", ["a", "b"], {"text": None, "audio": "af"})


def test_experiment_over_folds_reports_each_fold_and_their_mean(tmp_path):
    path = write_grouped(tmp_path, groups=(1,) * 4 + (2,) * 4 + (3,) * 4)
    cfg = load_config(
        None,
        [
            f"data.path={path}",
            "data.source=jsonl",
            "data.protocol=loso-1",
            "data.label_field=label",
            "data.audio_feature=af",
            "data.valid_fraction=0.25",
            "model.name=linear",
            "model.modalities=[audio]",
            "train.epochs=2",
            "train.progress=false",
        ],
    )
    summary = run_experiment(cfg, tmp_path / "f", [0, 1], folds=["loso-1", "loso-3"], log=lambda m: None)
    assert [(r["fold"], r["seed"]) for r in summary["runs"]] == [
        ("loso-1", 0),
        ("loso-1", 1),
        ("loso-3", 0),
        ("loso-3", 1),
    ]
    means = [summary["per_fold"][f]["test"]["accuracy"]["mean"] for f in ("loso-1", "loso-3")]
    assert summary["mean_over_folds"]["test"]["accuracy"]["mean"] == pytest.approx(sum(means) / 2)
    assert (tmp_path / "f" / "loso-3" / "seed-1" / "metrics.json").exists()


def test_experiment_cli(tmp_path, capsys):
    args = ["experiment", "--config", "synthetic", "--seeds", "2", "--out", str(tmp_path / "x")]
    for s in QUICK:
        args += ["--set", s]
    assert main(args) == 0
    assert "test over 2 runs: accuracy" in capsys.readouterr().out
    assert main(["experiment", "--config", "synthetic", "--seeds", "a-b", "--out", str(tmp_path / "y")]) == 2


def test_changed_data_is_never_mixed_into_a_resumed_experiment(tmp_path):
    path = write_grouped(tmp_path, groups=(1,) * 4 + (2,) * 4)
    cfg = load_config(
        None,
        [
            f"data.path={path}",
            "data.source=jsonl",
            "data.protocol=loso-2",
            "data.label_field=label",
            "data.audio_feature=af",
            "data.valid_fraction=0.25",
            "model.name=linear",
            "model.modalities=[audio]",
            "train.epochs=1",
            "train.progress=false",
        ],
    )
    run_experiment(cfg, tmp_path / "e", [0], log=lambda m: None)
    path.write_text(path.read_text().replace('"turn": 2', '"turn": 5'))
    with pytest.raises(RunDirError, match="different config or data"):
        run_experiment(cfg, tmp_path / "e", [0], log=lambda m: None)


def test_a_fold_without_training_dialogues_is_a_clear_error(tmp_path):
    path = write_grouped(tmp_path, groups=(1, 1))
    with pytest.raises(DataError, match="leaves no training dialogue"):
        load_jsonl_bundle(path, None, "loso-1", "label", ["a", "b"], {"text": None, "audio": "af"})


def test_finished_runs_from_before_get_missing_modality_scores_without_retraining(tmp_path):
    cfg = tmp_path / "quick.yaml"
    cfg.write_text(
        "model: {name: lpgnet, d_model: 16, heads: 2}\ntrain: {epochs: 1, progress: false}\n"
        "data: {synthetic: {train_dialogues: 12, test_dialogues: 4, d_text: 8, d_audio: 4}}\n"
    )
    out = tmp_path / "exp"
    run_experiment(str(cfg), out, [0], log=lambda m: None)
    marker = out / "seed-0" / "metrics.json"
    full = json.loads(marker.read_text())
    old = {k: v for k, v in full.items() if not k.startswith("test_without_")}
    marker.write_text(json.dumps(old))  # as written before these scores existed
    weights = (out / "seed-0" / "model.safetensors").stat().st_mtime_ns
    summary = run_experiment(str(cfg), out, [0], log=lambda m: None)
    again = json.loads(marker.read_text())
    assert (
        again == full and (out / "seed-0" / "model.safetensors").stat().st_mtime_ns == weights
    )  # re-scored, not retrained
    assert summary["test_without_audio"]["accuracy"]["mean"] == full["test_without_audio"]["accuracy"]


def test_a_finished_frame_run_is_reused_as_is(tmp_path):
    """LPGNet (Frame) cannot be scored with a modality left out, so its runs carry no
    such scores and a resumed experiment must not try to add them (it raised a DataError
    from inside the model, stopping the frame table's resumption)."""
    cfg = tmp_path / "frame.yaml"
    cfg.write_text(
        "model: {name: lpgnet_frame, d_model: 16, heads: 2}\ntrain: {epochs: 1, progress: false}\n"
        "data: {synthetic: {frames: 4, train_dialogues: 12, test_dialogues: 4, d_text: 8, d_audio: 4, max_turns: 10}}\n"
    )
    out = tmp_path / "exp"
    first = run_experiment(str(cfg), out, [0], log=lambda m: None)
    marker = out / "seed-0" / "metrics.json"
    before = marker.read_text()
    assert not any(k.startswith("test_without_") for k in json.loads(before))
    again = run_experiment(str(cfg), out, [0], log=lambda m: None)
    assert marker.read_text() == before and again["test"] == first["test"]
