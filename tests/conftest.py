"""Shared fixtures. Tests run single-threaded: CPU-bound tests in parallel with other
work slow down badly on 2 cores, and one thread keeps float results repeatable."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from lpgnet.config import SyntheticConfig
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
    return make_synthetic(SyntheticConfig(train_dialogues=24, test_dialogues=8, min_turns=4, max_turns=10, d_text=12, d_audio=7))


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
    cfg = transformers.BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=64)
    transformers.BertModel(cfg).save_pretrained(folder)
    return folder
