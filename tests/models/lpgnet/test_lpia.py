"""LPIA (SPEC (2)-(8)): shapes, masking, padding invariance, no NaN."""

from __future__ import annotations

import pytest
import torch

from conftest import VARIANTS, tiny_model
from lpgnet.models.lpgnet.lpia import (
    PATHS,
    GlobalCompression,
    MaskedAttention,
    ModalityProjection,
    active_paths,
)


def padded_pair(model, n_short=5, n_long=9, seed=1):
    g = torch.Generator().manual_seed(seed)
    cfg = model.config
    t = torch.randn(2, n_long, cfg.d_text, generator=g)
    a = torch.randn(2, n_long, cfg.d_audio, generator=g)
    mask = torch.ones(2, n_long, dtype=torch.bool)
    mask[0, n_short:] = False
    # garbage (not zeros) in the padding: it must still change nothing
    t[0, n_short:] = 1e3
    a[0, n_short:] = -1e3
    return t, a, mask


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) or "paper")
def test_padding_changes_nothing(variant):
    """A dialogue alone and the same dialogue padded beside a longer one give the same
    outputs at its real utterances (eval mode), for every variant."""
    model = tiny_model(**variant).eval()
    t, a, mask = padded_pair(model)
    n = int(mask[0].sum())
    with torch.no_grad():
        batched = model(t, a, mask, need_weights=True)
        alone = model(t[:1, :n], a[:1, :n], mask[:1, :n], need_weights=True)
    torch.testing.assert_close(batched.logits[0, :n], alone.logits[0], atol=1e-5, rtol=1e-5)
    if alone.alpha is not None:
        torch.testing.assert_close(batched.alpha[0, :n], alone.alpha[0], atol=1e-5, rtol=1e-5)
    for name, w in batched.attention.items():
        assert torch.all(w[0, :, :, n:] == 0), f"{name}: weight on padded keys"
        torch.testing.assert_close(w[0, :, :n, :n], alone.attention[name][0], atol=1e-5, rtol=1e-5)


def test_fully_padded_row_gives_no_nan():
    model = tiny_model().eval()
    t, a, mask = padded_pair(model)
    mask[0] = False  # a row with no utterance at all
    with torch.no_grad():
        out = model(t, a, mask, need_weights=True)
    assert torch.isfinite(out.logits).all()
    assert all(torch.isfinite(w).all() for w in out.attention.values())


def test_fully_padded_row_trains_without_nan():
    model = tiny_model().train()
    t, a, mask = padded_pair(model)
    mask[0] = False
    out = model(t, a, mask)
    out.logits[mask].sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_fused_and_explicit_attention_agree():
    torch.manual_seed(0)
    attn = MaskedAttention(16, heads=4).eval()
    q, kv = torch.randn(3, 6, 16), torch.randn(3, 8, 16)
    key_mask = torch.rand(3, 8) > 0.3
    key_mask[:, 0] = True
    fused, none = attn(q, kv, key_mask)
    explicit, w = attn(q, kv, key_mask, need_weights=True)
    assert none is None
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 4, 6))
    assert torch.all(w.masked_select(~key_mask[:, None, None, :].expand_as(w)) == 0)


def test_projection_kernel3_does_not_leak_padding():
    torch.manual_seed(0)
    proj = ModalityProjection(4, 8, kernel_size=3)
    x = torch.randn(1, 6, 4)
    mask = torch.tensor([[True] * 4 + [False] * 2])
    x_garbage = x.clone()
    x_garbage[0, 4:] = 99.0
    torch.testing.assert_close(proj(x, mask), proj(x_garbage, mask))
    torch.testing.assert_close(proj(x[:, :4], mask[:, :4]), proj(x, mask)[:, :4])
    assert torch.all(proj(x, mask)[0, 4:] == 0)


def test_global_compression_uses_valid_utterances_only_and_handles_batch_of_one():
    torch.manual_seed(0)
    gc = GlobalCompression(8).train()
    a = torch.randn(1, 5, 8)
    mask = torch.tensor([[True, True, True, False, False]])
    out = gc(a, mask)  # batch of one in training: falls back to running statistics
    assert out.shape == (1, 8) and torch.isfinite(out).all()
    gc.eval()
    a2 = a.clone()
    a2[0, 3:] = 50.0
    torch.testing.assert_close(gc(a, mask), gc(a2, mask))


def test_active_paths_follow_the_switches():
    both = ["text", "audio"]
    assert active_paths(both, True, True) == list(PATHS)
    assert active_paths(both, True, False) == ["text_intra", "audio_intra"]
    assert active_paths(both, False, True) == ["audio_to_text", "text_to_audio"]
    assert active_paths(["text"], True, True) == ["text_intra"]
    assert active_paths(["audio"], False, True) == []
    # audio-to-text: text queries audio (SPEC (3))
    assert PATHS["audio_to_text"] == ("text", "audio")
