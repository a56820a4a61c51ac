"""The peer models (SDT, GRU, Transformer) and speaker embeddings: same interface as
LPGNet, padding-invariant, checkpointable, trainable by the same trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lpgnet import (
    DataError,
    SDTConfig,
    build_model,
    load_config,
    load_pretrained,
    train,
)
from lpgnet.data.batching import speaker_indices, tensorize
from lpgnet.data.conversation import Dialogue
from lpgnet.models.base import SpeakerConfig
from lpgnet.models.sdt import EncoderLayer

IO = dict(d_text=12, d_audio=7, num_classes=4)
PEERS = {
    "sdt": dict(d_model=16, heads=2),
    "gru": dict(d_model=16),
    "transformer": dict(d_model=16, heads=2),
}


def peer(name: str, seed: int = 0, **overrides):
    from lpgnet.registry import model_config_class

    torch.manual_seed(seed)
    return build_model(model_config_class(name)(**IO, **{**PEERS[name], **overrides}))


def inputs(b: int = 3, n: int = 6):
    mask = torch.ones(b, n, dtype=torch.bool)
    if b > 1:
        mask[1, 4:] = False
    return torch.randn(b, n, 12), torch.randn(b, n, 7), mask, torch.randint(0, 2, (b, n))


def speaker_kw(model, spk):
    """Speaker indices go to the models with a ``speakers`` section (LPGNet, SDT) only."""
    return {"speakers": spk} if hasattr(model.config, "speakers") else {}


@pytest.mark.parametrize("name", sorted(PEERS))
def test_peer_trains_a_step_and_ignores_padding(name):
    model = peer(name).train()
    t, a, mask, spk = inputs()
    out = model(t, a, mask, **speaker_kw(model, spk))
    assert out.logits.shape == (3, 6, 4)
    loss = out.logits[mask].sum() + sum(z[mask].sum() for z in out.student_logits.values())
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    with torch.no_grad():
        in_batch = model(t, a, mask, **speaker_kw(model, spk)).logits[1, :4]
        padded = t.clone(), a.clone()
        padded[0][1, 4:], padded[1][1, 4:] = 1e3, -1e3  # garbage in the padding
        alone = model(t[1:2, :4], a[1:2, :4], mask[1:2, :4], **speaker_kw(model, spk[1:2, :4])).logits[0]
        garbage = model(*padded, mask, **speaker_kw(model, spk)).logits[1, :4]
    torch.testing.assert_close(in_batch, alone, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(in_batch, garbage, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(PEERS))
def test_peer_checkpoint_round_trip(name, tmp_path):
    model = peer(name).eval()
    model.save_pretrained(tmp_path)
    again = load_pretrained(tmp_path).eval()
    t, a, mask, spk = inputs()
    with torch.no_grad():
        torch.testing.assert_close(
            model(t, a, mask, **speaker_kw(model, spk)).logits, again(t, a, mask, **speaker_kw(again, spk)).logits
        )


def test_sdt_defaults_are_its_published_recipe():
    cfg = SDTConfig()
    assert (cfg.d_model, cfg.heads, cfg.layers, cfg.d_ff, cfg.dropout) == (1024, 8, 1, None, 0.5)
    assert cfg.position and cfg.speakers.embedding == "party"
    run = load_config("configs/iemocap/sdt.yaml")
    assert (run.train.lr, run.train.weight_decay, run.train.batch_size, run.train.epochs) == (1e-4, 1e-5, 16, 150)
    assert run.train.class_weights == "balanced"
    assert (run.loss.gamma1, run.loss.gamma2, run.loss.gamma3, run.loss.tau) == (1.0, 1.0, 1.0, 1.0)


def test_sdt_structure():
    model = peer("sdt")
    assert set(model.encoders) == {"text_intra", "audio_intra", "audio_to_text", "text_to_audio"}
    # layers are stacked: each extra layer adds exactly one encoder layer per path
    intra, cross = (sum(p.numel() for p in EncoderLayer(16, 2, 16, 0.5, c).parameters()) for c in (False, True))
    assert peer("sdt", layers=2).num_parameters() - model.num_parameters() == 2 * intra + 2 * cross
    # SDT's unimodal gates have no bias; its students are ReLU-dropout-linear
    assert all(g.proj.bias is None for g in model.fusion.gates.values())
    assert isinstance(model.students.heads["text"], torch.nn.Sequential)
    no_spk = peer("sdt", speakers=SpeakerConfig("none"))
    assert no_spk.speaker_embedding is None and not any("speaker" in n for n, _ in no_spk.named_parameters())


def test_sdt_speaker_embeddings_change_predictions():
    model = peer("sdt").eval()
    t, a, mask, _ = inputs(1, 4)
    with torch.no_grad():
        one = model(t, a, mask, speakers=torch.tensor([[0, 1, 0, 1]])).logits
        two = model(t, a, mask, speakers=torch.tensor([[0, 0, 1, 1]])).logits
    assert not torch.allclose(one, two)


def dialogue(speakers: list[str] | None, n: int = 4) -> Dialogue:
    return Dialogue("d", np.zeros((n, 2), np.float32), np.zeros((n, 1), np.float32), np.zeros(n, np.int64), speakers)


def test_speaker_indices_party_and_identity():
    d = dialogue(["B", "A", "B", "C"])
    assert speaker_indices(d) == [0, 1, 0, 2]  # order of first appearance in the dialogue
    assert speaker_indices(d, ["A", "B"]) == [2, 1, 2, 0]  # vocab index + 1; unseen C -> 0
    assert speaker_indices(dialogue(None)) == [0, 0, 0, 0]
    assert tensorize([d])[0].speakers.tolist() == [0, 1, 0, 2]


def test_identity_vocabulary_comes_from_the_training_split_only(tiny_synthetic, tmp_path):
    cfg = load_config(
        None,
        [
            "model.d_model=16",
            "model.heads=2",
            "train.epochs=1",
            "train.progress=false",
            "model.speakers.embedding=identity",
        ],
    )
    result = train(cfg, data=tiny_synthetic, log=lambda m: None, out_dir=tmp_path / "run")
    vocab = result.model.config.speakers.vocab
    train_speakers = {s for d in tiny_synthetic.splits["train"] for s in d.speakers}
    test_speakers = {s for d in tiny_synthetic.splits["test"] for s in d.speakers}
    # (the validation dialogues are carved out of these, so a speaker may be missing)
    assert vocab and set(vocab) <= train_speakers and not test_speakers & set(vocab)
    assert load_pretrained(tmp_path / "run").config.speakers.vocab == vocab  # saved with the model


def test_speaker_models_need_speaker_names(tiny_synthetic):
    for d in tiny_synthetic.splits["test"][:1]:
        d.speakers = None
    cfg = load_config(None, ["model.d_model=16", "model.heads=2", "train.epochs=1", "model.speakers.embedding=party"])
    with pytest.raises(DataError, match="field 'speaker' is missing"):
        train(cfg, data=tiny_synthetic, log=lambda m: None)


def test_too_many_parties_is_a_clear_error(tiny_synthetic):
    cfg = load_config(
        None,
        [
            "model.d_model=16",
            "model.heads=2",
            "train.epochs=1",
            "model.speakers.embedding=party",
            "model.speakers.max_speakers=1",
        ],
    )
    with pytest.raises(DataError, match="max_speakers is 1"):
        train(cfg, data=tiny_synthetic, log=lambda m: None)


@pytest.mark.parametrize("name", sorted(PEERS))
def test_peer_learns_the_synthetic_data(name, tmp_path):
    overrides = [
        f"model.name={name}",
        "model.d_model=32",
        "train.epochs=25",
        "train.lr=2e-3",
        "train.progress=false",
        "data.synthetic.train_dialogues=60",
        "data.synthetic.test_dialogues=20",
    ]
    if name != "gru":
        overrides.append("model.heads=2")
    if name == "sdt":
        overrides.append("model.dropout=0.1")
    result = train(load_config(None, overrides), out_dir=tmp_path / name, log=lambda m: None)
    assert result.metrics["model"] == name
    assert result.metrics["test"]["accuracy"] > 0.4  # 6 classes: chance is about 0.17
