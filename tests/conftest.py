"""Shared fixtures. Tests run single-threaded: CPU-bound tests in parallel with other
work slow down badly on 2 cores, and one thread keeps float results repeatable."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from lpgnet import load_config, train
from lpgnet.config import SyntheticConfig
from lpgnet.data import Dialogue
from lpgnet.data.synthetic import make_synthetic
from lpgnet.models.lpgnet.model import LPGNet, LPGNetConfig

torch.set_num_threads(1)


def tiny_config(**overrides) -> LPGNetConfig:
    base = dict(d_text=12, d_audio=7, num_classes=4, d_model=16, heads=2, d_ff_mult=2, dropout=0.1)
    base.update(overrides)
    return LPGNetConfig(**base)


def tiny_model(seed: int = 0, **overrides) -> LPGNet:
    torch.manual_seed(seed)
    return LPGNet(tiny_config(**overrides))


@pytest.fixture
def tiny_synthetic():
    return make_synthetic(
        SyntheticConfig(train_dialogues=24, test_dialogues=8, min_turns=4, max_turns=10, d_text=12, d_audio=7)
    )


WORDS = "i am so happy sad angry fine okay what why no yes great terrible".split()


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A randomly initialised 2-layer BERT saved as a local folder: the same code path as
    MiniLM or bert-base, without any download."""
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    # (transformers 5 ignores vocab_file here and maps every word to [UNK]: pass the vocab)
    tokenizer = transformers.BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)})
    assert tokenizer("i am happy")["input_ids"] == [2, 5, 6, 8, 3]
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    transformers.BertModel(cfg).save_pretrained(folder)
    return folder


# LPGNet variants every LPIA/model test runs over (each paper switch)
VARIANTS = [
    {},
    {"kernel_size": 3},
    {"kernel_size": 5, "position": "sinusoidal"},
    {"modalities": ["text"]},
    {"modalities": ["audio"]},
    {"inter_attention": False},
    {"intra_attention": False},
    {"ffn": False},
    {"fusion": "concat"},
    {"multimodal_gate": "scalar"},
    {"ffn_layer_norm": True},
    {"attn_out_proj": True},
    {"compression_norm": "layer"},
    {"attn_dropout": 0.2, "residual_dropout": 0.2},
]


# a small JSONL corpus and a quick run on it (predict, serve, frame tests)
LABELS = ["neg", "pos"]


def write_corpus(folder, dialogues=16, turns=5, seed=0):
    """Text vectors (field tf) and audio vectors (field af) that both carry the label."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(dialogues):
        for t in range(turns):
            y = int(rng.integers(2))
            rows.append(
                {
                    "utt_id": f"d{d}_{t}",
                    "dialog_id": f"d{d}",
                    "turn": t,
                    "speaker": "AB"[t % 2],
                    "label": LABELS[y],
                    "text": ["i am sad", "i am happy"][y],
                    "tf": (rng.normal(size=6) + 2 * y).round(4).tolist(),
                    "af": (rng.normal(size=3) - y).round(4).tolist(),
                }
            )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "conv.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    ids = [f"d{d}" for d in range(dialogues)]
    (folder / "splits.json").write_text(json.dumps({"p": {"train": ids[:10], "valid": ids[10:13], "test": ids[13:]}}))
    return rows


def quick_run(tmp_path, *overrides, corpus="conv.jsonl", text_feature="tf"):
    feats = [f"data.text_feature={text_feature}"] if text_feature else []
    cfg = load_config(
        None,
        [
            "data.source=jsonl",
            f"data.path={tmp_path / corpus}",
            f"data.splits={tmp_path / 'splits.json'}",
            "data.protocol=p",
            "data.audio_feature=af",
            *feats,
            "model.d_model=16",
            "model.heads=2",
            "train.epochs=3",
            "train.progress=false",
            *overrides,
        ],
    )
    out = tmp_path / "run"
    train(cfg, out_dir=out, log=lambda m: None)
    return out


def dialogue(n=3, d_t=4, d_a=2, labels=None, **kw):
    """A zero-feature dialogue "d1" of ``n`` utterances (label 0 unless given)."""
    return Dialogue(
        "d1",
        np.zeros((n, d_t), np.float32),
        np.zeros((n, d_a), np.float32),
        np.asarray(labels if labels is not None else [0] * n),
        **kw,
    )
