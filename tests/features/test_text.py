"""Text features from a Hugging Face encoder: pooling, fine-tuning on training dialogues
only, cross-fitting, and the on-disk cache. A tiny randomly initialised BERT stands in
for MiniLM / bert-base (same code path, no download)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import WORDS
from lpgnet import ConfigError, load_config
from lpgnet.features import text as text_mod
from lpgnet.features.text import pool, resolve_encoder
from lpgnet.training.setup import load_data


def write_corpus(tmp_path, n=10, text_of=None):
    rows = []
    for d in range(n):
        for t in range(4):
            label = ["pos", "neg"][(d + t) % 2]
            rows.append(
                {
                    "utt_id": f"d{d}_{t}",
                    "dialog_id": f"d{d}",
                    "turn": t,
                    "session": 1 + d % 2,
                    "text": (
                        text_of
                        or (
                            lambda d, t, label=label: (
                                f"i am {'happy' if label == 'pos' else 'sad'} {WORDS[(d + t) % 9]} d{d} t{t}"
                            )
                        )
                    )(d, t),
                    "label": label,
                    "af": [float(label == "pos"), 1.0],
                }
            )
    path = tmp_path / "conv.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ids = [f"d{d}" for d in range(n)]
    (tmp_path / "splits.json").write_text(json.dumps({"p": {"train": ids[:6], "valid": ids[6:8], "test": ids[8:]}}))
    return path


def config(tmp_path, folder, *extra):
    return load_config(
        "synthetic",
        [
            "data.source=jsonl",
            f"data.path={tmp_path / 'conv.jsonl'}",
            f"data.splits={tmp_path / 'splits.json'}",
            "data.protocol=p",
            "data.audio_feature=af",
            f"data.text_encoder.encoder={folder}",
            f"data.text_encoder.cache_dir={tmp_path / 'cache'}",
            "data.text_encoder.batch_size=5",
            *extra,
        ],
    )


def test_pooling_cls_and_masked_mean():
    h = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert torch.equal(pool(h, mask, "cls"), h[:, 0])
    assert torch.allclose(pool(h, mask, "mean")[0], h[0, :2].mean(0))  # the pad token is ignored
    assert torch.allclose(pool(h, mask, "mean")[1], h[1].mean(0))


def test_unknown_encoder_is_a_clear_error_without_download(tmp_path):
    with pytest.raises(ConfigError, match="never downloaded"):
        resolve_encoder("no-such-org/no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no config.json"):
        resolve_encoder(str(tmp_path / "empty"))


def test_frozen_features_fill_the_text_modality_and_are_cached(tmp_path, tiny_bert, monkeypatch):
    write_corpus(tmp_path)
    bundle = load_data(config(tmp_path, tiny_bert))
    assert bundle.dims["text"] == 16
    d = bundle.splits["test"][0]
    assert d.text.shape == (4, 16) and np.isfinite(d.text).all()
    # same utterance text -> same vector, whatever the batch it was encoded in
    entries = list((tmp_path / "cache" / "text-features").glob("*.safetensors"))
    assert len(entries) == 1

    def boom(*a, **k):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(text_mod, "encode", boom)
    again = load_data(config(tmp_path, tiny_bert))
    np.testing.assert_array_equal(again.splits["test"][0].text, d.text)


def test_pooling_and_data_changes_invalidate_the_cache(tmp_path, tiny_bert):
    write_corpus(tmp_path)
    cls = load_data(config(tmp_path, tiny_bert, "data.text_encoder.pooling=cls"))
    mean = load_data(config(tmp_path, tiny_bert, "data.text_encoder.pooling=mean"))
    assert not np.allclose(cls.splits["test"][0].text, mean.splits["test"][0].text)
    write_corpus(tmp_path, text_of=lambda d, t: f"what why {WORDS[t]}")
    changed = load_data(config(tmp_path, tiny_bert, "data.text_encoder.pooling=mean"))
    assert not np.allclose(changed.splits["test"][0].text, mean.splits["test"][0].text)
    assert len(list((tmp_path / "cache" / "text-features").glob("*.safetensors"))) == 3


def test_a_corrupt_cache_entry_is_recomputed_and_a_failed_run_leaves_none(tmp_path, tiny_bert, monkeypatch):
    write_corpus(tmp_path)
    first = load_data(config(tmp_path, tiny_bert))
    (entry,) = (tmp_path / "cache" / "text-features").glob("*.safetensors")
    entry.write_bytes(b"garbage")
    again = load_data(config(tmp_path, tiny_bert))
    np.testing.assert_allclose(again.splits["test"][0].text, first.splits["test"][0].text, atol=1e-6)
    entry.unlink()

    def fail(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(text_mod, "encode", fail)
    with pytest.raises(KeyboardInterrupt):
        load_data(config(tmp_path, tiny_bert))
    assert list((tmp_path / "cache" / "text-features").iterdir()) == []  # nothing half-written


@pytest.mark.parametrize("folds", [0, 2])
def test_fine_tuning_sees_training_dialogues_only(tmp_path, tiny_bert, monkeypatch, folds):
    write_corpus(tmp_path)
    seen: list[list[str]] = []
    real = text_mod.finetune

    def spy(path, texts, labels, num_classes, cfg, desc="", log=None):
        seen.append(list(texts))
        return real(path, texts, labels, num_classes, cfg, desc, log)

    monkeypatch.setattr(text_mod, "finetune", spy)
    cfg = config(
        tmp_path,
        tiny_bert,
        "data.text_encoder.finetune.enabled=true",
        "data.text_encoder.finetune.epochs=1",
        f"data.text_encoder.finetune.crossfit_folds={folds}",
    )
    lines: list[str] = []
    bundle = load_data(cfg, log=lines.append)
    # a line per fine-tuning epoch, so a long step can be followed in a log without a terminal
    assert sum("epoch 1/1 done" in line for line in lines) == 1 + folds
    train_texts = [t for d in bundle.splits["train"] for t in d.texts]
    held_texts = {t for s in ("valid", "test") for d in bundle.splits[s] for t in d.texts} - set(train_texts)
    assert len(seen) == 1 + folds
    for texts in seen:
        assert not set(texts) & held_texts
    assert sum(map(len, seen[1:])) == folds * len(train_texts) - len(train_texts) * (
        folds > 0
    )  # each part held out once
    frozen = load_data(config(tmp_path, tiny_bert))
    assert not np.allclose(frozen.splits["test"][0].text, bundle.splits["test"][0].text)


def test_config_rules(tmp_path, tiny_bert):
    write_corpus(tmp_path)
    with pytest.raises(ConfigError, match="not both"):
        config(tmp_path, tiny_bert, "data.text_feature=af")
    with pytest.raises(ConfigError, match="data.text_encoder.poolng"):
        config(tmp_path, tiny_bert, "data.text_encoder.poolng=cls")
    with pytest.raises(ConfigError, match="crossfit_folds"):
        config(tmp_path, tiny_bert, "data.text_encoder.finetune.crossfit_folds=1")


def test_text_must_be_a_string(tmp_path, tiny_bert):
    path = write_corpus(tmp_path)
    lines = path.read_text().splitlines()
    row = json.loads(lines[2])
    row["text"] = None
    lines[2] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")
    from lpgnet import DataError

    with pytest.raises(DataError, match=r"conv.jsonl:3: field 'text'"):
        load_data(config(tmp_path, tiny_bert))


def test_a_run_with_encoder_features_trains_and_evaluates_reproducibly(tmp_path, tiny_bert):
    from lpgnet import evaluate_run, train

    write_corpus(tmp_path)
    cfg = config(
        tmp_path,
        tiny_bert,
        "model.d_model=16",
        "model.heads=2",
        "train.epochs=2",
        "train.progress=false",
        "data.text_encoder.finetune.enabled=true",
        "data.text_encoder.finetune.epochs=1",
    )
    result = train(cfg, out_dir=tmp_path / "run", log=lambda m: None)
    assert result.model.config.d_text == 16
    again = evaluate_run(tmp_path / "run")  # features come back from the cache: same figures
    assert again["matches_saved"] is True


def test_cache_entries_get_the_usual_file_permissions(tmp_path):
    import os

    from lpgnet.features.cache import save_entry
    from lpgnet.files import _UMASK

    save_entry(tmp_path / "e.safetensors", ["u"], np.zeros((1, 3), np.float32), {})
    assert os.stat(tmp_path / "e.safetensors").st_mode & 0o777 == 0o666 & ~_UMASK


def test_crossfit_by_group_gives_each_group_its_own_part():
    """With crossfit_by group, a session is embedded by an encoder fine-tuned on the other
    sessions only (its speakers unseen, as the test session's)."""
    from conftest import dialogue
    from lpgnet.config import FinetuneConfig, TextEncoderConfig
    from lpgnet.errors import DataError
    from lpgnet.features.text import crossfit_parts

    train = [dialogue() for _ in range(6)]
    for d, g in zip(train, ["1", "2", "1", "3", "2", "3"]):
        d.group = g
    cfg = TextEncoderConfig(finetune=FinetuneConfig(enabled=True, crossfit_folds=5, crossfit_by="group"))
    parts, k = crossfit_parts(train, cfg, "x.jsonl")
    assert k == 3 and parts.tolist() == [0, 1, 0, 2, 1, 2]
    train[0].group = None
    with pytest.raises(DataError, match="crossfit_by 'group'"):
        crossfit_parts(train, cfg, "x.jsonl")
    by_dialogue = TextEncoderConfig(finetune=FinetuneConfig(enabled=True, crossfit_folds=3))
    parts, k = crossfit_parts(train, by_dialogue, "x.jsonl")
    assert k == 3 and sorted(parts.tolist()) == [0, 0, 1, 1, 2, 2]
