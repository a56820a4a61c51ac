"""SDT at parity with its released code: ``model.code: public`` computes what SDT's public
code computes. The reference below re-expresses that computation from its equations,
step by step in plain tensor algebra, reading the weights out of our module; the module
must match it to 1e-4 (eval mode, real utterances)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lpgnet import SDTConfig, build_model, load_config
from lpgnet.data.batching import speaker_indices
from lpgnet.data.conversation import Dialogue
from lpgnet.errors import DataError
from lpgnet.models.base import SpeakerConfig, sinusoidal_positions
from lpgnet.models.lpgnet.lpia import PATHS

D, HEADS = 16, 2


def sdt(code: str, layers: int = 1, seed: int = 0):
    torch.manual_seed(seed)
    cfg = SDTConfig(
        d_text=12,
        d_audio=7,
        num_classes=4,
        d_model=D,
        heads=HEADS,
        layers=layers,
        code=code,
        speakers=SpeakerConfig("gender"),
    )
    model = build_model(cfg).eval()
    for p in model.parameters():  # LayerNorm's default (1, 0) would hide a missing or misplaced norm
        torch.nn.init.normal_(p, std=0.3)
    return model


def inputs(b: int = 2, n: int = 7):
    g = torch.Generator().manual_seed(1)
    mask = torch.ones(b, n, dtype=torch.bool)
    mask[1, 5:] = False
    return torch.randn(b, n, 12, generator=g), torch.randn(b, n, 7, generator=g), mask, torch.randint(0, 2, (b, n))


def layer_norm(x, ln, eps=1e-6):
    mu, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * ln.weight + ln.bias


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def attention(att, query, key_value, key_mask):
    """Multi-head attention: Q, K, V projections, scaled scores, padded keys at -1e10,
    softmax, then the output projection."""
    b, n, _ = query.shape
    split = lambda x: x.view(b, -1, HEADS, D // HEADS).transpose(1, 2)  # noqa: E731
    q, k, v = split(att.q(query)), split(att.k(key_value)), split(att.v(key_value))
    scores = (q / math.sqrt(D // HEADS)) @ k.transpose(2, 3)
    scores = scores.masked_fill(~key_mask[:, None, None, :], -1e10)
    context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, D)
    return att.out(context)


def encoder(enc, query, context, key_mask, extra, cross):
    """SDT's encoder: positions + speakers added to its inputs; per layer i, the query
    is layer-normalised only for i > 0 (and the residual then starts from it), the
    context never; attention, residual, then the pre-LayerNorm tanh-GELU feed-forward."""
    x_b = query + extra
    x_a = context + extra if cross else None
    for i, layer in enumerate(enc.layers):
        if i > 0:
            x_b = layer_norm(x_b, layer.norm_q)
        out = attention(layer.attn, x_b, x_a if cross else x_b, key_mask) + x_b
        w1, w2 = layer.ffn[0], layer.ffn[3]
        x_b = w2(gelu_tanh(w1(layer_norm(out, layer.norm_ff)))) + out
    return x_b


def reference(model, text, audio, mask, speakers):
    x = {"text": model.inputs.norm["text"](text), "audio": model.inputs.norm["audio"](audio)}
    h = {m: F.conv1d(x[m].transpose(1, 2), model.project[m].conv.weight).transpose(1, 2) for m in x}
    extra = sinusoidal_positions(mask.shape[1], D) + model.speaker_embedding.table(speakers)
    out = {
        p: encoder(model.encoders[p], h[PATHS[p][0]], h[PATHS[p][1]], mask, extra, PATHS[p][0] != PATHS[p][1])
        for p in model.paths
    }
    gated = {p: torch.sigmoid(model.fusion.gates[p].proj(o)) * o for p, o in out.items()}  # unimodal gates
    f = {m: model.fusion.merge[m](torch.cat([gated[p] for p in s], -1)) for m, s in model.fusion.streams.items()}
    stacked = torch.stack([f["text"], f["audio"]], dim=-2)
    fused = (model.fusion.gate.score(stacked).softmax(-2) * stacked).sum(-2)  # element-wise multimodal gate
    return model.classifier(fused)


@pytest.mark.parametrize("layers", [1, 2])
def test_public_code_matches_the_reexpression_of_sdts_computation(layers):
    model = sdt("public", layers)
    t, a, mask, spk = inputs()
    with torch.no_grad():
        got = model(t, a, mask, speakers=spk).logits
        want = reference(model, t, a, mask, spk)
    assert (got - want)[mask].abs().max() <= 1e-4


def test_the_described_reading_differs_from_the_released_code():
    public, described = sdt("public"), sdt("described")
    # identical weights; the norms the released code lacks are the identity (weight 1, bias 0)
    missing, unexpected = described.load_state_dict(public.state_dict(), strict=False)
    assert not unexpected and all(".norm_q." in k or ".norm_kv." in k for k in missing)
    for name, param in described.named_parameters():
        if name in missing:
            torch.nn.init.constant_(param, 1.0 if name.endswith("weight") else 0.0)
    t, a, mask, spk = inputs()
    with torch.no_grad():
        gap = (public(t, a, mask, speakers=spk).logits - described(t, a, mask, speakers=spk).logits)[mask].abs().max()
    assert gap > 1e-3


def test_public_encoders_draw_their_own_input_dropout_in_training():
    model = sdt("public").train()
    assert all(enc.embed is not None for enc in model.encoders.values())
    assert all(enc.embed is None for enc in sdt("described").encoders.values())


def test_gender_speaker_index_as_sdts_iemocap_loader():
    d = Dialogue(
        "d",
        torch.zeros(4, 2).numpy(),
        torch.zeros(4, 1).numpy(),
        torch.zeros(4, dtype=torch.long).numpy(),
        ["Ses01_F", "Ses01_M", "Ses01_F", "Ses01_M"],
    )
    assert speaker_indices(d, "gender") == [1, 0, 1, 0]  # M = 0, F = 1
    d.speakers = ["Ses01_F", "Anna"]
    d.speakers = d.speakers + ["x", "y"]
    with pytest.raises(DataError, match="'Anna'.*ending in M or F"):
        speaker_indices(d, "gender")


def test_the_public_recipe_config():
    cfg = load_config("configs/iemocap/sdt-public.yaml")
    assert cfg.model.code == "public" and cfg.model.speakers.embedding == "gender"
    assert cfg.loss.detach_teacher is False and cfg.loss.kl_on == "all"
