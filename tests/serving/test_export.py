"""``lpgnet export``: an ONNX graph that onnxruntime runs with the PyTorch model's answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lpgnet import load_config, load_pretrained, train
from lpgnet.cli import main
from lpgnet.serving.export import example, graph_inputs

ort = pytest.importorskip("onnxruntime")


def quick_run(tmp_path, *overrides):
    size = (
        []
        if "model.name=linear" in overrides
        else ["model.d_model=16"]
        if "model.name=gru" in overrides
        else ["model.d_model=16", "model.heads=2"]
    )
    cfg = load_config(
        None,
        [
            *size,
            "train.epochs=1",
            "train.progress=false",
            "data.synthetic.train_dialogues=12",
            "data.synthetic.test_dialogues=4",
            "data.synthetic.d_text=12",
            "data.synthetic.d_audio=5",
            *overrides,
        ],
    )
    out = tmp_path / "run"
    train(cfg, out_dir=out, log=lambda m: None)
    return out


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["model.modalities=[text]"],
        ["model.speakers.embedding=party"],
        ["model.causal=true"],
        ["model.name=sdt", "model.layers=2"],
        ["model.name=gru"],
        ["model.name=linear"],
    ],
    ids=["lpgnet", "text-only", "speakers", "causal", "sdt", "gru", "linear"],
)
def test_export_matches_pytorch_on_several_lengths_with_padding(tmp_path, overrides, capsys):
    run = quick_run(tmp_path, *overrides)
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "m.onnx")]) == 0
    assert "max |diff|" in capsys.readouterr().out
    model = load_pretrained(run)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    names = graph_inputs(model)
    assert [i.name for i in session.get_inputs()] == names
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["lpgnet_labels"]) == json.loads((run / "metrics.json").read_text())["test"]["labels"]
    for n in (3, 33):  # lengths the export never saw
        ex = example(model, names, 4, n, seed=100 + n)
        with torch.no_grad():
            out = model(
                ex.get("text"),
                ex.get("audio"),
                ex["mask"],
                **({"speakers": ex["speakers"]} if "speakers" in ex else {}),
            )
        got = session.run(None, {k: v.numpy() for k, v in ex.items()})
        keep = ex["mask"].numpy()
        assert np.abs(got[0] - out.logits.softmax(-1).numpy())[keep].max() <= 1e-4
        if out.alpha is not None:
            assert np.abs(got[1] - out.alpha.numpy())[keep].max() <= 1e-4


def test_export_refuses_to_overwrite_and_names_a_bad_run(tmp_path, capsys):
    run = quick_run(tmp_path)
    (tmp_path / "m.onnx").write_bytes(b"mine")
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and (tmp_path / "m.onnx").read_bytes() == b"mine"
    assert main(["export", "--run", str(tmp_path / "nope"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "not found" in capsys.readouterr().err and not (tmp_path / "x.onnx").exists()


def test_a_model_that_does_not_trace_is_refused_with_a_reason(tmp_path, capsys):
    run = quick_run(tmp_path, "model.name=transformer")  # nn.TransformerEncoderLayer traces with a fixed length
    assert main(["export", "--run", str(run), "--out", str(tmp_path / "t.onnx")]) == 2
    err = capsys.readouterr().err
    assert "does not export to ONNX correctly" in err and "Traceback" not in err and not (tmp_path / "t.onnx").exists()
