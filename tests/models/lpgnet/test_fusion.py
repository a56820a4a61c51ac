"""Dual-gated fusion (SPEC (9)-(14)) and the concat ablation."""

from __future__ import annotations

import pytest
import torch

from lpgnet.models.lpgnet.fusion import (
    ConcatFusion,
    DualGatedFusion,
    MultimodalGate,
    UnimodalGate,
)
from lpgnet.models.lpgnet.lpia import PATHS


def outputs(d=8, b=2, n=5):
    torch.manual_seed(0)
    return {p: torch.randn(b, n, d) for p in PATHS}


def test_unimodal_gate_is_sigmoid_times_input():
    gate = UnimodalGate(8)
    h = torch.randn(3, 8)
    expected = torch.sigmoid(h @ gate.proj.weight.T + gate.proj.bias) * h
    torch.testing.assert_close(gate(h), expected)


@pytest.mark.parametrize("mode,width", [("scalar", 1), ("vector", 8)])
def test_multimodal_gate_weights_sum_to_one_across_modalities(mode, width):
    gate = MultimodalGate(8, mode)
    f_t, f_a = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    fused, alpha = gate([f_t, f_a])
    assert alpha.shape == (2, 5, 2, width)
    torch.testing.assert_close(alpha.sum(-2), torch.ones(2, 5, width))
    torch.testing.assert_close(fused, alpha[:, :, 0] * f_t + alpha[:, :, 1] * f_a)  # (14)


def test_dual_gated_fusion_streams_by_query_modality():
    fusion = DualGatedFusion(8, list(PATHS), ("text", "audio"), "vector")
    assert fusion.streams == {"text": ["text_intra", "audio_to_text"], "audio": ["audio_intra", "text_to_audio"]}
    fused, per_mod, alpha = fusion(outputs())
    assert fused.shape == (2, 5, 8) and set(per_mod) == {"text", "audio"} and alpha.shape == (2, 5, 2, 8)
    assert len(fusion.gates) == 4  # G_1..G_4, separate weights


def test_single_modality_fusion_has_weight_one():
    fusion = DualGatedFusion(8, ["text_intra"], ("text",), "vector")
    fused, per_mod, alpha = fusion({"text_intra": torch.randn(2, 5, 8)})
    torch.testing.assert_close(fused, per_mod["text"])
    assert torch.all(alpha == 1)


def test_concat_fusion_has_no_gates():
    fusion = ConcatFusion(8, list(PATHS), ("text", "audio"))
    fused, per_mod, alpha = fusion(outputs())
    assert alpha is None and fused.shape == (2, 5, 8)
    assert not any(isinstance(m, (UnimodalGate, MultimodalGate)) for m in fusion.modules())
