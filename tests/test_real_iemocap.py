"""On the real IEMOCAP bundle in ../shared/data (CI has it; elsewhere these skip).

Only the speech-classifier logits are used here (text features come with the
text-encoder work); the check is that training on real dialogues learns: far above the
4-class chance level on the session-5 test split.
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
    pytest.mark.skipif(not (IEMOCAP / "utterances.jsonl").exists(),
                       reason=f"real IEMOCAP bundle not found at {IEMOCAP} (set LPGNET_SHARED_DATA)"),
]


def iemocap(*extra):
    return load_config("synthetic", [
        "data.source=jsonl", f"data.path={IEMOCAP / 'utterances.jsonl'}", f"data.splits={IEMOCAP / 'splits.json'}",
        "data.protocol=session5", "data.label_field=label4", "data.labels=[ang, hap, neu, sad]",
        "data.audio_feature=audio_logits4", "model.modalities=[audio]", "train.progress=false", *extra])


def test_reader_matches_the_bundle_readme_counts():
    from lpgnet.train import load_data

    bundle = load_data(iemocap())
    labelled = {s: int((bundle.labels(s) >= 0).sum()) for s in bundle.splits}
    assert labelled["train"] + labelled["valid"] == 4290 and labelled["test"] == 1241
    assert len(bundle.splits["test"]) == 31 and len(bundle.splits["train"]) + len(bundle.splits["valid"]) == 120


def test_session5_short_run_learns():
    result = train(iemocap("model.d_model=64", "model.heads=4", "train.epochs=8"))
    assert result.metrics["test"]["accuracy"] > 0.5  # chance 0.25; the logits' own argmax gives 0.66
