"""LPGNet assembly: every paper variant is a config switch; checkpoints round-trip."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from conftest import VARIANTS, tiny_config, tiny_model
from lpgnet import (
    ConfigError,
    DataError,
    LinearBaseline,
    LinearConfig,
    LPGNet,
    LPGNetConfig,
    build_model,
    load_pretrained,
)
from lpgnet.models.base import SpeakerConfig
from lpgnet.models.lpgnet.fusion import ConcatFusion


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) or "paper")
def test_every_variant_trains_a_step(variant):
    model = tiny_model(**variant).train()
    t, a, mask = torch.randn(3, 6, 12), torch.randn(3, 6, 7), torch.ones(3, 6, dtype=torch.bool)
    out = model(t, a, mask)
    assert out.logits.shape == (3, 6, 4)
    assert set(out.student_logits) == set(model.modalities)  # one student per modality
    (out.logits.sum() + sum(z.sum() for z in out.student_logits.values())).backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad and "bn" not in n)


def test_ablation_switches_change_the_structure():
    full = tiny_model()
    assert set(full.lpia.blocks) == {"text_intra", "audio_intra", "audio_to_text", "text_to_audio"}
    assert set(tiny_model(inter_attention=False).lpia.blocks) == {"text_intra", "audio_intra"}
    assert set(tiny_model(intra_attention=False).lpia.blocks) == {"audio_to_text", "text_to_audio"}
    assert all(b.ffn is None for b in tiny_model(ffn=False).lpia.blocks.values())
    assert isinstance(tiny_model(fusion="concat").fusion, ConcatFusion)
    text_only = tiny_model(modalities=["text"])
    assert set(text_only.lpia.blocks) == {"text_intra"} and "audio" not in text_only.inputs.dims
    assert text_only.num_parameters() < full.num_parameters()


@pytest.mark.parametrize("switch", ["attn_dropout", "residual_dropout"])
def test_attention_and_residual_dropout_act_in_training_only(switch):
    """The switches add no parameters and change nothing in evaluation; in training they
    drop, and a zero rate computes a step exactly as the model without the residual
    dropout module did (same random draws, so recorded runs stay reproducible)."""
    torch.manual_seed(0)
    zero = tiny_model(**{switch: 0.0})
    dropped, without = tiny_model(**{switch: 0.5}), tiny_model()
    dropped.load_state_dict(zero.state_dict())
    without.load_state_dict(zero.state_dict())
    for block in without.lpia.blocks.values():  # the computation before the switches existed
        block.residual_drop = torch.nn.Identity()
    t, a, mask = torch.randn(2, 6, 12), torch.randn(2, 6, 7), torch.ones(2, 6, dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(dropped.eval()(t, a, mask).logits, zero.eval()(t, a, mask).logits)
        logits = {}
        for name, model in {"zero": zero, "without": without, "dropped": dropped}.items():
            torch.manual_seed(1)
            logits[name] = model.train()(t, a, mask).logits
    assert torch.equal(logits["zero"], logits["without"])
    assert not torch.allclose(logits["dropped"], logits["zero"])


def test_unimodal_model_ignores_the_other_modality():
    model = tiny_model(modalities=["text"]).eval()
    t, mask = torch.randn(1, 4, 12), torch.ones(1, 4, dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(model(t, None, mask).logits, model(t, torch.randn(1, 4, 99), mask).logits)


def test_outputs_expose_gates_and_attention():
    model = tiny_model().eval()
    out = model(torch.randn(2, 5, 12), torch.randn(2, 5, 7), torch.ones(2, 5, dtype=torch.bool), need_weights=True)
    assert out.alpha.shape == (2, 5, 2) and out.modalities == ("text", "audio")
    torch.testing.assert_close(out.alpha.sum(-1), torch.ones(2, 5))
    assert set(out.attention) == set(model.paths)
    assert out.attention["audio_to_text"].shape == (2, 2, 5, 5)
    assert out.student_logits == {}  # students are training-only


def test_no_speaker_input_by_default():
    model = tiny_model().eval()
    assert not any("speaker" in n for n, _ in model.named_parameters())
    t, a, mask = torch.randn(2, 5, 12), torch.randn(2, 5, 7), torch.ones(2, 5, dtype=torch.bool)
    with torch.no_grad():  # the speakers argument is ignored: the prediction cannot depend on who speaks
        ref = model(t, a, mask).logits
        torch.testing.assert_close(model(t, a, mask, speakers=torch.randint(0, 3, (2, 5))).logits, ref)


@pytest.mark.parametrize("mode", ["party", "identity"])
def test_speaker_embeddings_option(mode):
    vocab = ["s1", "s2", "s3"] if mode == "identity" else None
    model = tiny_model(speakers=SpeakerConfig(mode, max_speakers=3, vocab=vocab)).eval()
    assert model.speaker_embedding.table.num_embeddings == (4 if mode == "identity" else 3)
    t, a, mask = torch.randn(1, 4, 12), torch.randn(1, 4, 7), torch.ones(1, 4, dtype=torch.bool)
    with torch.no_grad():
        one = model(t, a, mask, speakers=torch.tensor([[0, 1, 0, 1]])).logits
        other = model(t, a, mask, speakers=torch.tensor([[1, 0, 1, 0]])).logits
    assert not torch.allclose(one, other)  # who speaks now matters
    with pytest.raises(DataError, match="speakers"):
        model(t, a, mask)  # a speaker model without speakers: a clear error
    with pytest.raises(DataError, match="more than"):
        model(t, a, mask, speakers=torch.tensor([[0, 1, 2, 7]]))


@pytest.mark.parametrize(
    "bad,field",
    [
        ({"heads": 3}, "heads"),
        ({"kernel_size": 2}, "kernel_size"),
        ({"modalities": []}, "modalities"),
        ({"modalities": ["text"], "intra_attention": False}, "no attention path"),
        ({"num_classes": 1}, "num_classes"),
        ({"dropout": 1.0}, "dropout"),
        ({"attn_dropout": -0.1}, "attn_dropout"),
        ({"residual_dropout": 1.0}, "residual_dropout"),
    ],
)
def test_invalid_configs_are_refused_with_the_field_named(bad, field):
    with pytest.raises(ConfigError, match=field):
        LPGNet(tiny_config(**bad))


def test_sizes_must_be_known_to_build():
    with pytest.raises(ConfigError, match="num_classes"):
        LPGNet(LPGNetConfig())


def test_wrong_feature_dimension_is_a_clear_error():
    model = tiny_model().eval()
    with pytest.raises(DataError, match="text features: expected dimension 12, got 11"):
        model(torch.randn(1, 3, 11), torch.randn(1, 3, 7), torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(DataError, match="none of the model's modalities"):
        model(None, None, torch.ones(1, 3, dtype=torch.bool))


def test_a_missing_modality_is_left_out_through_the_gates():
    model = tiny_model().eval()
    t, a, mask = torch.randn(2, 5, 12), torch.randn(2, 5, 7), torch.ones(2, 5, dtype=torch.bool)
    mask[1, 3:] = False
    with torch.no_grad():
        none = model(t, None, mask)  # no audio at all
        nan = model(t, torch.full_like(a, float("nan")), mask)  # the same, as NaN rows
        torch.testing.assert_close(none.logits, nan.logits)
        assert torch.isfinite(none.logits).all()
        assert torch.equal(none.alpha[mask], torch.tensor([[1.0, 0.0]]).expand(int(mask.sum()), 2))  # all on text
        assert not none.present["audio"].any() and torch.equal(none.present["text"], mask)
        some = a.clone()
        some[0, 2] = float("nan")  # one utterance without audio
        out = model(t, some, mask)
        assert out.alpha[0, 2, 1] == 0 and (out.alpha[0, [0, 1, 3, 4], 1] > 0).all()
        # its audio value is never read: anything there gives the same answer
        other = some.clone()
        other[0, 2] = 0.0
        other_out = model(t, other, mask)
        assert not torch.allclose(out.logits[0], other_out.logits[0])  # (0.0 is a value, NaN is "missing")


def test_baselines_impute_a_missing_modality_with_the_training_mean():
    torch.manual_seed(0)
    model = LinearBaseline(LinearConfig(d_text=12, d_audio=7, num_classes=4)).eval()
    model.inputs.set_stats({"text": (torch.zeros(12), torch.ones(12)), "audio": (torch.full((7,), 2.0), torch.ones(7))})
    t, mask = torch.randn(1, 3, 12), torch.ones(1, 3, dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(model(t, None, mask).logits, model(t, torch.full((1, 3, 7), 2.0), mask).logits)


@pytest.mark.parametrize(
    "factory",
    [
        lambda: tiny_model(kernel_size=3, multimodal_gate="scalar"),
        lambda: LinearBaseline(LinearConfig(d_text=12, d_audio=7, num_classes=4)),
    ],
)
def test_save_and_load_pretrained_round_trip(tmp_path, factory):
    model = factory().eval()
    model.inputs.set_stats(
        {"text": (torch.randn(12), torch.rand(12) + 0.5), "audio": (torch.randn(7), torch.rand(7) + 0.5)}
    )
    path = model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path)
    assert loaded.config == model.config and not loaded.training
    x = (torch.randn(2, 4, 12), torch.randn(2, 4, 7), torch.ones(2, 4, dtype=torch.bool))
    with torch.no_grad():
        torch.testing.assert_close(loaded(*x).logits, model(*x).logits)
    with safe_open(str(path), "pt") as f:  # config travels as JSON metadata, no pickle
        assert json.loads(f.metadata()["lpgnet_model_config"])["name"] == model.config.name
    assert type(load_pretrained(path)) is type(model)


def test_from_pretrained_refuses_the_wrong_class_and_non_checkpoints(tmp_path):
    from lpgnet import RunDirError

    LinearBaseline(LinearConfig(d_text=12, d_audio=7, num_classes=4)).save_pretrained(tmp_path)
    with pytest.raises(RunDirError, match="not a LPGNet"):
        LPGNet.from_pretrained(tmp_path)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(RunDirError, match="junk.safetensors"):
        load_pretrained(junk)
    with pytest.raises(RunDirError, match="not found"):
        load_pretrained(tmp_path / "missing")


def test_registry_builds_by_name():
    model = build_model(tiny_config())
    assert isinstance(model, LPGNet)
    assert isinstance(build_model(LinearConfig(d_text=3, d_audio=2, num_classes=2)), LinearBaseline)


@pytest.mark.parametrize(
    "variant",
    [{}, {"kernel_size": 3}, {"position": "sinusoidal"}, {"fusion": "concat"}, {"speakers": SpeakerConfig("party")}],
    ids=["paper", "k3", "pos", "concat", "spk"],
)
def test_causal_mode_never_looks_ahead(variant):
    model = tiny_model(causal=True, **variant).eval()
    t, a = torch.randn(2, 9, 12), torch.randn(2, 9, 7)
    mask = torch.ones(2, 9, dtype=torch.bool)
    spk = torch.arange(9).remainder(2).expand(2, 9)
    with torch.no_grad():
        full = model(t, a, mask, speakers=spk).logits
        for n in (1, 4, 8):
            prefix = model(t[:, :n], a[:, :n], mask[:, :n], speakers=spk[:, :n]).logits  # the future not there yet
            changed = t.clone()
            changed[:, n:] = torch.randn(2, 9 - n, 12)  # ... or different
            torch.testing.assert_close(prefix, full[:, :n], atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(
                model(changed, a, mask, speakers=spk).logits[:, :n], full[:, :n], atol=1e-5, rtol=1e-4
            )
    out = model.train()(t, a, mask, speakers=spk)
    (out.logits.sum() + sum(z.sum() for z in out.student_logits.values())).backward()


def test_full_dialogue_mode_does_look_ahead():
    model = tiny_model().eval()  # the paper's model: every utterance sees the whole dialogue
    t, a, mask = torch.randn(1, 6, 12), torch.randn(1, 6, 7), torch.ones(1, 6, dtype=torch.bool)
    with torch.no_grad():
        changed = t.clone()
        changed[:, 5] += 3.0
        assert not torch.allclose(model(t, a, mask).logits[:, :5], model(changed, a, mask).logits[:, :5])
