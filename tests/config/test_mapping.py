"""Configs: YAML mapped strictly onto dataclasses; errors name the key."""

from __future__ import annotations

import pytest

from lpgnet import ConfigError, LinearConfig, LPGNetConfig, RunConfig, load_config
from lpgnet.config import dump_config, parse_overrides, same_config


def test_defaults_are_the_paper_recipe():
    cfg = load_config()
    assert isinstance(cfg.model, LPGNetConfig)
    assert (cfg.model.d_model, cfg.model.kernel_size, cfg.model.dropout) == (768, 1, 0.1)
    assert (cfg.train.lr, cfg.train.batch_size, cfg.train.epochs, cfg.train.optimizer) == (3e-4, 32, 150, "adam")
    assert (cfg.loss.gamma1, cfg.loss.gamma2, cfg.loss.gamma3, cfg.loss.tau) == (1.5, 1.0, 0.3, 1.0)


def test_preset_and_overrides():
    cfg = load_config("synthetic", ["model.kernel_size=3", "model.modalities=[text]", "loss.gamma3=0"])
    assert cfg.model.d_model == 128 and cfg.train.epochs == 40
    assert cfg.model.kernel_size == 3 and cfg.model.modalities == ["text"] and cfg.loss.gamma3 == 0.0
    assert isinstance(load_config("synthetic-linear").model, LinearConfig)


def test_round_trip_through_yaml(tmp_path):
    cfg = load_config("synthetic", ["model.fusion=concat", "train.patience=5"])
    path = tmp_path / "c.yaml"
    path.write_text(dump_config(cfg))
    assert load_config(path) == cfg


@pytest.mark.parametrize(
    "text,message",
    [
        ("model:\n  d_modle: 3\n", "unknown key 'model.d_modle'"),
        ("trian:\n  epochs: 3\n", "unknown key 'trian'"),
        ("train:\n  epochs: three\n", "train.epochs: expected int"),
        ("train:\n  epochs: 2.5\n", "train.epochs: expected int"),
        ("model:\n  ffn: 'yes'\n", "model.ffn: expected bool"),
        ("model:\n  fusion: sum\n", "model.fusion: expected one of 'dual_gated', 'concat'"),
        ("model:\n  modalities: [text, video]\n", r"model.modalities\[1\]"),
        ("model:\n  name: transformerxl\n", "model.name: unknown model 'transformerxl'"),
        ("train:\n  epochs: 0\n", "train.epochs: expected a positive integer"),
        ("loss:\n  tau: 0\n", "loss.tau"),
        ("data:\n  valid_fraction: 1.5\n", "data.valid_fraction"),
        ("data:\n  context_window: 1\n", "data.context_window: expected a number of utterances >= 2"),
        ("- a\n- b\n", "expected a YAML mapping"),
        ("model: [\n", "not valid YAML at line"),
    ],
)
def test_bad_config_files_name_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_missing_and_unreadable_config(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="no such config file or preset"):
        load_config("no-such-preset")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "bin.yaml")


def test_override_syntax():
    assert parse_overrides(["a.b=1", "a.c=[x, y]", "d=null"]) == {"a": {"b": 1, "c": ["x", "y"]}, "d": None}
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_overrides(["model.d_model"])
    with pytest.raises(ConfigError, match="model.heads: expected int"):
        load_config(None, ["model.heads=many"])


def test_run_config_default_model():
    assert RunConfig().model.name == "lpgnet"


def test_exponent_without_a_dot_is_a_float():
    # PyYAML (YAML 1.1) reads "1e-3" as a string; a float field still takes it.
    cfg = load_config(None, ["train.lr=1e-3", "train.weight_decay=5E-5"])
    assert cfg.train.lr == 1e-3 and cfg.train.weight_decay == 5e-5
    with pytest.raises(ConfigError, match="train.lr: expected float"):
        load_config(None, ["train.lr=fast"])


def test_same_config_ignores_how_a_run_executes_but_not_what_it_is():
    saved = dump_config(load_config(None, ["train.threads=1", "train.progress=false"]))
    assert same_config(saved, load_config(None))  # thread count and progress bar: execution only
    assert not same_config(saved, load_config(None, ["train.seed=1"]))
    assert not same_config(saved, load_config(None, ["train.lr=0.01"]))
    assert not same_config(None, load_config(None))
