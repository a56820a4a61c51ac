"""The generic JSONL conversation format: reading, splits, and errors with line numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lpgnet import DataError, load_config, train
from lpgnet.cli import main
from lpgnet.data.conversation import IGNORE
from lpgnet.data.jsonl import load_jsonl_bundle

LABELS = ["neg", "neu", "pos"]


def write_corpus(tmp_path, n_dialogues=12, edit=None):
    lines = []
    for d in range(n_dialogues):
        for t in range(3 + d % 4):
            label = LABELS[(d + t) % 3] if t != 1 else None
            x = (d + t) % 3
            lines.append(
                {
                    "dialog_id": f"d{d:02d}",
                    "turn": t,
                    "text": f"utt {t}",
                    "speaker": f"s{t % 2}",
                    "label": label,
                    "tf": [float(x == k) + 0.01 * t for k in range(3)] + [0.5],
                    "af": [float(x), 1.0],
                }
            )
    lines.reverse()  # order in the file must not matter: turns decide
    if edit:
        edit(lines)
    path = tmp_path / "conv.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    splits = tmp_path / "splits.json"
    ids = [f"d{d:02d}" for d in range(n_dialogues)]
    splits.write_text(
        json.dumps(
            {"p": {"train": ids[:8], "test": ids[8:]}, "p3": {"train": ids[:6], "valid": ids[6:8], "test": ids[8:]}}
        )
    )
    return path, splits


def load(path, splits, protocol="p", **kw):
    args = dict(label_field="label", labels=LABELS, features={"text": "tf", "audio": "af"}, unlabelled="context")
    args.update(kw)
    return load_jsonl_bundle(path, splits, protocol, **args)


def test_reads_dialogues_in_turn_order_with_unlabelled_context(tmp_path):
    bundle = load(*write_corpus(tmp_path))
    assert bundle.dims == {"text": 4, "audio": 2} and bundle.label_names == LABELS
    d0 = next(d for d in bundle.splits["train"] if d.dialog_id == "d00")
    assert d0.labels.tolist() == [0, IGNORE, 2]  # turns 0, 1 (unlabelled), 2
    assert d0.speakers == ["s0", "s1", "s0"]
    assert set(bundle.splits) == {"train", "test"}
    dropped = load(*write_corpus(tmp_path), unlabelled="drop")
    assert all((d.labels != IGNORE).all() for s in dropped.splits.values() for d in s)
    assert len(load(*write_corpus(tmp_path), protocol="p3").splits["valid"]) == 2


def test_one_modality_only(tmp_path):
    bundle = load(*write_corpus(tmp_path), features={"text": None, "audio": "af"})
    assert bundle.dims == {"text": 0, "audio": 2}
    cfg = load_config(
        "synthetic",
        [
            "data.source=jsonl",
            f"data.path={tmp_path / 'conv.jsonl'}",
            f"data.splits={tmp_path / 'splits.json'}",
            "data.protocol=p",
            "data.audio_feature=af",
            "train.epochs=1",
            "train.progress=false",
        ],
    )
    with pytest.raises(DataError, match="uses text features but the data has none"):
        train(cfg)
    cfg.model.modalities = ["audio"]
    assert train(cfg).metrics["model"] == "lpgnet"


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda L: L.__setitem__(0, {**L[0], "turn": "x"}), ":1: field 'turn': expected int"),
        (lambda L: L.__setitem__(2, {**L[2], "label": "joy"}), ":3: field 'label': 'joy' is not in the label set"),
        (
            lambda L: L.__setitem__(1, {**L[1], "tf": [1.0, "a"]}),
            ":2: field 'tf': expected a non-empty list of numbers",
        ),
        (lambda L: L.__setitem__(1, {**L[1], "tf": [1.0, 2.0]}), ":2: field 'tf': 4 values expected"),
        (lambda L: L.append({**L[-1]}), "turn 0 appears twice"),
    ],
)
def test_bad_lines_are_reported_with_file_line_and_field(tmp_path, edit, message):
    path, splits = write_corpus(tmp_path, edit=edit)
    with pytest.raises(DataError, match=message) as info:
        load(path, splits)
    assert str(path) in str(info.value)


def test_malformed_json_line_and_missing_files(tmp_path):
    path, splits = write_corpus(tmp_path)
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(DataError, match=r"conv.jsonl:\d+: malformed JSON"):
        load(path, splits)
    with pytest.raises(DataError, match="conversation file not found"):
        load(tmp_path / "none.jsonl", splits)
    path, splits = write_corpus(tmp_path)
    with pytest.raises(DataError, match="no protocol 'nope'"):
        load(path, splits, protocol="nope")
    splits.write_text(json.dumps({"p": {"train": ["d00", "zz"], "test": ["d01"]}}))
    with pytest.raises(DataError, match="names dialogue 'zz', absent from"):
        load(path, splits)


def test_train_and_evaluate_on_jsonl_with_data_override(tmp_path, capsys):
    path, splits = write_corpus(tmp_path, n_dialogues=16)
    sets = [
        "data.source=jsonl",
        f"data.path={path}",
        f"data.splits={splits}",
        "data.protocol=p",
        "data.text_feature=tf",
        "data.audio_feature=af",
        "data.labels=[neg, neu, pos]",
        "model.d_model=16",
        "model.heads=2",
        "train.epochs=2",
        "train.batch_size=4",
        "train.progress=false",
    ]
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *[a for s in sets for a in ("--set", s)]]) == 0
    assert main(["evaluate", "--run", str(out)]) == 0
    assert "metrics.json: yes" in capsys.readouterr().out
    copy = tmp_path / "copy.jsonl"
    copy.write_text(path.read_text())
    assert main(["evaluate", "--run", str(out), "--data", str(copy)]) == 0
    assert main(["evaluate", "--run", str(out), "--data", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing.jsonl: conversation file not found" in capsys.readouterr().err


def test_jsonl_source_needs_its_fields():
    from lpgnet import ConfigError

    with pytest.raises(ConfigError, match="data.path: required when data.source is jsonl"):
        load_config(None, ["data.source=jsonl"])


def test_training_data_may_miss_a_modality_as_prediction_may(tmp_path):
    """null, an absent field or NaN marks a missing vector in training data too (as in
    `lpgnet predict`); it trains, standardised with the utterances that have it."""
    from lpgnet import load_config, train

    rows = []
    for d in range(8):
        for t in range(4):
            y = (d + t) % 2
            audio = None if t == 1 else ([float("nan")] * 2 if t == 2 else [y - 0.5, 1.0])
            row = {"dialog_id": f"d{d}", "turn": t, "label": "ab"[y], "tf": [float(y), 0.5, -y / 2]}
            if t != 3:
                row["af"] = audio
            rows.append(row)
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "s.json").write_text(json.dumps({"p": {"train": [f"d{i}" for i in range(6)], "test": ["d6", "d7"]}}))
    bundle = load_jsonl_bundle(path, tmp_path / "s.json", "p", "label", None, {"text": "tf", "audio": "af"})
    d0 = bundle.splits["train"][0]
    assert np.isnan(d0.audio[1:]).all() and not np.isnan(d0.audio[0]).any()
    stats = bundle.input_stats("train")
    assert torch.isfinite(stats["audio"][0]).all() and torch.isfinite(stats["audio"][1]).all()
    cfg = load_config(
        None,
        [
            "data.source=jsonl",
            f"data.path={path}",
            f"data.splits={tmp_path / 's.json'}",
            "data.protocol=p",
            "data.text_feature=tf",
            "data.audio_feature=af",
            "train.epochs=2",
            "train.progress=false",
            "model.d_model=8",
            "model.heads=2",
        ],
    )
    metrics = train(cfg, log=lambda m: None).metrics
    assert np.isfinite(metrics["test"]["loss"])


@pytest.mark.parametrize(
    "value,message",
    [
        ("1e400", "value inf is not a usable feature"),
        ("2e6", "value 2000000.0 is not a usable feature"),
        ('"x"', "expected a non-empty list of numbers"),
    ],
)
def test_bad_feature_values_name_the_file_line_and_field(tmp_path, value, message):
    path = tmp_path / "c.jsonl"
    path.write_text(
        '{"dialog_id": "a", "turn": 0, "session": 1, "label": "x", "af": [1.0, 2.0]}\n'
        f'{{"dialog_id": "a", "turn": 1, "session": 1, "label": "x", "af": [{value}, 2.0]}}\n'
    )
    with pytest.raises(DataError, match=rf"{path}:2: field 'af': {message}"):
        load_jsonl_bundle(path, None, "loso-1", "label", None, {"text": None, "audio": "af"})
