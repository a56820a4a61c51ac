"""Cross-validated selection (``train.selection: crossval``): the epoch count is chosen on
left-out groups of the training dialogues, never on test; the final model trains on all
of them for that many epochs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import dialogue
from lpgnet import ConfigError, evaluate_run, load_config, train
from lpgnet.training.crossval import crossval_folds

QUICK = [
    "train.selection=crossval",
    "train.epochs=4",
    "train.progress=false",
    "model.d_model=16",
    "model.heads=2",
    "data.synthetic.train_dialogues=24",
    "data.synthetic.test_dialogues=6",
    "data.synthetic.d_text=8",
    "data.synthetic.d_audio=4",
]


def test_folds_leave_one_group_out_or_fall_back_to_seeded_folds():
    ds = [dialogue(labels=[0, 1, 0]) for _ in range(6)]
    for d, g in zip(ds, ["2", "1", "2", "3", "1", "3"]):
        d.group = g
    folds = crossval_folds(ds, k=4)
    assert [name for name, _, _ in folds] == ["group 1", "group 2", "group 3"]
    for _, inner, out in folds:
        assert {id(d) for d in inner}.isdisjoint(id(d) for d in out) and len(inner) + len(out) == 6
        assert len({d.group for d in out}) == 1 and all(d.group != out[0].group for d in inner)
    for d in ds:
        d.group = None
    folds = crossval_folds(ds, k=3, seed=1)
    assert len(folds) == 3 and sorted(id(d) for _, _, out in folds for d in out) == sorted(id(d) for d in ds)
    assert folds == crossval_folds(ds, k=3, seed=1)


def test_crossval_run_chooses_epochs_without_test_and_trains_on_everything(tmp_path):
    cfg = load_config(None, QUICK)
    result = train(cfg, out_dir=tmp_path / "run", log=lambda m: None)
    m = result.metrics
    assert m["selection"] == "crossval" and 1 <= m["best_epoch"] <= m["epochs_run"] <= 4
    # the valid figures are the pooled left-out scores of the chosen epoch, over every training dialogue
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    row = dict(zip(log[0].split(","), log[m["best_epoch"]].split(",")))
    assert float(row["valid_weighted_f1"]) == pytest.approx(m["valid"]["weighted_f1"])
    labelled = sum(int((d.labels >= 0).sum()) for d in _train_dialogues(cfg))
    assert m["valid"]["n"] == labelled
    # the same run again gives the same figures (seeded folds and batch orders)
    again = train(cfg, log=lambda x: None).metrics
    assert again["test"] == m["test"] and again["best_epoch"] == m["best_epoch"]
    # its saved test figures are reproduced; it has no validation split to re-score
    assert evaluate_run(tmp_path / "run")["matches_saved"]
    with pytest.raises(ConfigError, match="cross-validation"):
        evaluate_run(tmp_path / "run", split="valid")
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["selection"] == "crossval"
    # the fold models on test, alone and averaged: a diagnostic beside the run's own score
    folds = saved["fold_models_test"]
    assert len(folds["members"]["accuracy"]) == len(crossval_folds(_train_dialogues(cfg), cfg.train.cv_folds))
    assert folds["ensemble"]["n"] == m["test"]["n"] and 0.0 <= folds["ensemble"]["accuracy"] <= 1.0


def test_an_ensemble_of_one_model_scores_as_that_model():
    from lpgnet.training.scoring import score, score_ensemble
    from lpgnet.training.setup import as_items, load_data

    cfg = load_config(None, [*QUICK, "train.epochs=1"])
    model = train(cfg, log=lambda x: None).model
    bundle = load_data(cfg)
    items, names = as_items(cfg, bundle.splits["test"]), bundle.label_names
    alone = score(model, items, names)
    members, twice = score_ensemble([model, model], items, names)
    assert [m["accuracy"] for m in members] == [alone["accuracy"]] * 2
    assert twice["confusion_matrix"] == alone["confusion_matrix"] and twice["accuracy"] == alone["accuracy"]


def _train_dialogues(cfg):
    from lpgnet.training.setup import load_data

    bundle = load_data(cfg)
    assert not bundle.splits["valid"]  # no carve: every training dialogue trains and selects
    return bundle.splits["train"]


def test_patience_stops_on_the_pooled_score(tmp_path):
    cfg = load_config(None, [*QUICK, "train.epochs=30", "train.patience=1", "train.lr=0.05"])
    m = train(cfg, log=lambda x: None).metrics
    assert m["epochs_run"] < 30 and m["epochs_run"] - m["best_epoch"] == 1
    assert np.isfinite(m["test"]["accuracy"])


def test_cv_folds_must_be_at_least_two():
    with pytest.raises(ConfigError, match="cv_folds"):
        load_config(None, ["train.cv_folds=1"])
