"""LPGNet (Frame): LPIA and fusion along token / frame sequences of one utterance."""

from __future__ import annotations

import pytest
import torch

from lpgnet import ConfigError, load_config, load_pretrained, train
from lpgnet.models.lpgnet.frame import FrameLPGNet, FrameLPGNetConfig


def frame_model(**kw) -> FrameLPGNet:
    torch.manual_seed(0)
    return FrameLPGNet(
        FrameLPGNetConfig(d_text=6, d_audio=4, num_classes=3, d_model=16, heads=2, d_ff_mult=2, **kw)
    ).eval()


def test_padding_frames_change_nothing_and_lengths_may_differ():
    model = frame_model()
    t, a = torch.randn(1, 9, 6), torch.randn(1, 3, 4)  # 9 tokens, 3 audio frames
    one = torch.ones(1, 1, dtype=torch.bool)
    with torch.no_grad():
        alone = model(t, a, one).logits
        # the same utterance padded to 20 / 7 frames with garbage, in a batch with another one
        tp, ap = torch.full((2, 20, 6), 1e3), torch.full((2, 7, 4), -1e3)
        tp[0, :9], ap[0, :3] = t[0], a[0]
        tp[1], ap[1] = torch.randn(20, 6), torch.randn(7, 4)
        tm, am = torch.zeros(2, 20, dtype=torch.bool), torch.zeros(2, 7, dtype=torch.bool)
        tm[0, :9], am[0, :3], tm[1], am[1] = True, True, True, True
        batched = model(tp, ap, torch.ones(2, 1, dtype=torch.bool), text_mask=tm, audio_mask=am).logits
    assert alone.shape == (1, 1, 3)
    torch.testing.assert_close(batched[0], alone[0], atol=1e-5, rtol=1e-4)


def test_a_single_vector_modality_is_a_sequence_of_one_frame():
    model = frame_model()
    with torch.no_grad():
        out = model(torch.randn(2, 11, 6), torch.randn(2, 1, 4), torch.ones(2, 1, dtype=torch.bool), need_weights=True)
    assert out.attention["audio_to_text"].shape == (2, 2, 11, 1)  # text queries read the one audio frame
    assert out.alpha.shape == (2, 1, 2)


def test_max_frames_cuts_long_sequences():
    model = frame_model(max_frames=5)
    t, a = torch.randn(1, 8, 6), torch.randn(1, 2, 4)
    with torch.no_grad():
        torch.testing.assert_close(
            model(t, a, torch.ones(1, 1, dtype=torch.bool)).logits,
            model(t[:, :5], a, torch.ones(1, 1, dtype=torch.bool)).logits,
        )


def test_frame_model_config_refuses_what_it_does_not_support():
    with pytest.raises(ConfigError, match="frame-level model supports"):
        FrameLPGNetConfig(d_text=6, d_audio=4, num_classes=3, causal=True).validate()


def test_only_the_frame_model_is_frame_level_and_it_is_never_scored_without_a_modality():
    from lpgnet.training.scoring import missing_modality_splits

    frame, plain = load_config(None, ["model.name=lpgnet_frame"]), load_config(None)
    assert frame.model.frame_level and not plain.model.frame_level
    assert missing_modality_splits(frame) == []
    assert missing_modality_splits(plain) == ["test_without_text", "test_without_audio"]


def test_frame_model_trains_on_synthetic_frames_and_round_trips(tmp_path):
    cfg = load_config(
        None,
        [
            "model.name=lpgnet_frame",
            "model.d_model=16",
            "model.heads=2",
            "train.epochs=6",
            "train.progress=false",
            "train.lr=2e-3",
            "data.synthetic.frames=6",
            "data.synthetic.train_dialogues=30",
            "data.synthetic.test_dialogues=10",
            "data.synthetic.d_text=12",
            "data.synthetic.d_audio=6",
            "data.synthetic.max_turns=12",
        ],
    )
    result = train(cfg, out_dir=tmp_path / "run", log=lambda m: None)
    assert result.metrics["test"]["accuracy"] > 0.3  # 6 classes, chance about 0.17, no dialogue context
    again = load_pretrained(tmp_path / "run")
    t, a = torch.randn(2, 5, 12), torch.randn(2, 3, 6)
    with torch.no_grad():
        torch.testing.assert_close(
            again(t, a, torch.ones(2, 1, dtype=torch.bool)).logits,
            result.model(t, a, torch.ones(2, 1, dtype=torch.bool)).logits,
        )


def test_text_token_frames_from_the_encoder_with_utterance_level_audio(tmp_path, tiny_bert):
    from conftest import write_corpus
    from lpgnet.training.setup import load_data

    write_corpus(tmp_path)
    cfg = load_config(
        None,
        [
            "model.name=lpgnet_frame",
            "model.d_model=16",
            "model.heads=2",
            "train.epochs=3",
            "train.progress=false",
            "data.source=jsonl",
            f"data.path={tmp_path / 'conv.jsonl'}",
            f"data.splits={tmp_path / 'splits.json'}",
            "data.protocol=p",
            "data.audio_feature=af",
            f"data.text_encoder.encoder={tiny_bert}",
            f"data.text_encoder.cache_dir={tmp_path / 'cache'}",
            "data.text_frames=true",
        ],
    )
    bundle = load_data(cfg, log=lambda m: None)
    d = bundle.splits["test"][0]
    assert [f.shape for f in d.text_frames] == [(5, 16)] * len(d)  # [CLS] i am sad/happy [SEP]
    result = train(cfg, log=lambda m: None)
    assert result.metrics["model"] == "lpgnet_frame" and 0 <= result.metrics["test"]["accuracy"] <= 1
    with pytest.raises(ConfigError, match="text_frames: needs a frozen"):
        load_config(
            None,
            [
                "data.source=jsonl",
                "data.path=x",
                "data.splits=y",
                "data.protocol=p",
                "data.text_encoder.finetune.enabled=true",
                "data.text_frames=true",
            ],
        )
