"""Config files that inherit from a base file."""

from __future__ import annotations

import pytest

from lpgnet import ConfigError, load_config


def test_config_base_chain(tmp_path):
    (tmp_path / "a.yaml").write_text("model: {name: lpgnet, d_model: 32, heads: 2}\ntrain: {epochs: 3}\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\nmodel: {d_model: 64}\n")
    cfg = load_config(tmp_path / "b.yaml")
    assert (cfg.model.d_model, cfg.model.heads, cfg.train.epochs) == (64, 2, 3)
    (tmp_path / "c.yaml").write_text("base: c.yaml\n")
    with pytest.raises(ConfigError, match="includes itself"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match="missing.yaml not found"):
        load_config(tmp_path / "d.yaml")


def test_a_base_with_another_model_does_not_leak_its_model_fields(tmp_path):
    (tmp_path / "a.yaml").write_text("model: {name: lpgnet, d_model: 32, heads: 2}\ntrain: {epochs: 3}\n")
    (tmp_path / "lin.yaml").write_text("base: a.yaml\nmodel: {name: linear}\n")
    cfg = load_config(tmp_path / "lin.yaml")
    assert cfg.model.name == "linear" and cfg.train.epochs == 3
