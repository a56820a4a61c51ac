"""``lpgnet extract``: features added to a conversation file, cached per utterance,
resumable, and bad utterances reported (skipped by default, fatal with --strict)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import WORDS
from lpgnet.cli import main
from lpgnet.config import TextEncoderConfig
from lpgnet.features import text as text_mod
from lpgnet.features.extract import ExtractConfig, extract


def write_conv(folder, rows=None):
    rows = rows or [
        {
            "utt_id": f"d{d}_{t}",
            "dialog_id": f"d{d}",
            "turn": t,
            "label": "pos",
            "text": " ".join(WORDS[(d + t) % 7 : (d + t) % 7 + 3]) + f" d{d} t{t}",
        }
        for d in range(3)
        for t in range(4)
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "utterances.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return folder


def text_cfg(folder, bert, tmp_path, **kw):
    return ExtractConfig(
        data=str(folder),
        text=TextEncoderConfig(encoder=str(bert), pooling="mean", batch_size=4),
        cache_dir=str(tmp_path / "cache"),
        **kw,
    )


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_text_features_are_added_and_match_the_encoder(tmp_path, tiny_bert):
    folder = write_conv(tmp_path / "conv")
    summary = extract(text_cfg(folder, tiny_bert, tmp_path), log=lambda m: None)
    out = read(folder / "features.jsonl")
    src = read(folder / "utterances.jsonl")
    assert summary["written"] == len(out) == len(src) == 12 and summary["fields"] == {"text_emb": 16}
    assert [o["utt_id"] for o in out] == [s["utt_id"] for s in src]  # input order, input fields kept
    assert all(o["label"] == "pos" for o in out)
    model, tok = text_mod.load_encoder(tiny_bert)
    ref = text_mod.encode(model, tok, [s["text"] for s in src], TextEncoderConfig(pooling="mean"))
    np.testing.assert_allclose(np.array([o["text_emb"] for o in out]), ref, rtol=1e-5, atol=1e-6)


def test_extraction_resumes_and_reuses_the_cache(tmp_path, tiny_bert, monkeypatch):
    folder = write_conv(tmp_path / "conv")
    calls = []
    real = text_mod.encode

    def flaky(model, tok, texts, cfg, desc="encode"):
        calls.append(len(texts))
        if len(calls) == 2:
            raise KeyboardInterrupt  # interrupted after the first chunk was stored
        return real(model, tok, texts, cfg, desc)

    monkeypatch.setattr("lpgnet.features.extract.encode", flaky)
    with pytest.raises(KeyboardInterrupt):
        extract(text_cfg(folder, tiny_bert, tmp_path, chunk=5), log=lambda m: None)
    assert not (folder / "features.jsonl").exists()  # nothing partial in the output
    calls.clear()
    monkeypatch.setattr("lpgnet.features.extract.encode", lambda *a, **k: (calls.append(len(a[2])), real(*a, **k))[1])
    extract(text_cfg(folder, tiny_bert, tmp_path, chunk=5), log=lambda m: None)
    assert sum(calls) == 12 - 5  # only what the interruption lost
    calls.clear()
    extract(text_cfg(folder, tiny_bert, tmp_path, chunk=5, out=str(tmp_path / "again.jsonl")), log=lambda m: None)
    assert calls == []  # everything from the cache
    assert read(tmp_path / "again.jsonl") == read(folder / "features.jsonl")


def test_a_changed_text_is_recomputed_alone(tmp_path, tiny_bert, monkeypatch):
    folder = write_conv(tmp_path / "conv")
    extract(text_cfg(folder, tiny_bert, tmp_path), log=lambda m: None)
    rows = read(folder / "utterances.jsonl")
    rows[3]["text"] = "terrible terrible"
    write_conv(folder, rows)
    calls = []
    real = text_mod.encode
    monkeypatch.setattr("lpgnet.features.extract.encode", lambda *a, **k: (calls.append(list(a[2])), real(*a, **k))[1])
    extract(text_cfg(folder, tiny_bert, tmp_path, overwrite=True), log=lambda m: None)
    assert calls == [["terrible terrible"]]


def test_bad_utterances_are_skipped_and_counted_or_fatal_with_strict(tmp_path, tiny_bert, capsys):
    rows = [
        {"utt_id": "a", "dialog_id": "d", "turn": 0, "text": "i am happy"},
        {"utt_id": "b", "dialog_id": "d", "turn": 1, "text": None},
        {"utt_id": "c", "dialog_id": "d", "turn": 2, "text": "no"},
    ]
    folder = write_conv(tmp_path / "conv", rows)
    summary = extract(text_cfg(folder, tiny_bert, tmp_path), log=lambda m: None)
    assert summary["skipped"] == {"no text": 1} and summary["written"] == 2
    assert "utterances.jsonl:2: utterance 'b': field 'text'" in summary["examples"][0]
    assert [o["utt_id"] for o in read(folder / "features.jsonl")] == ["a", "c"]
    assert json.loads((folder / "features.extract-report.json").read_text())["skipped"] == {"no text": 1}
    code = main(
        [
            "extract",
            "--data",
            str(folder),
            "--text-encoder",
            str(tiny_bert),
            "--strict",
            "--out",
            str(tmp_path / "strict.jsonl"),
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "utterances.jsonl:2: utterance 'b'" in err and not (tmp_path / "strict.jsonl").exists()


def test_an_existing_output_is_never_replaced_without_overwrite(tmp_path, tiny_bert, capsys):
    folder = write_conv(tmp_path / "conv")
    (folder / "features.jsonl").write_text("mine\n")
    args = ["extract", "--data", str(folder), "--text-encoder", str(tiny_bert), "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 2 and "pass --overwrite" in capsys.readouterr().err
    assert (folder / "features.jsonl").read_text() == "mine\n"
    assert main(args + ["--overwrite"]) == 0 and len(read(folder / "features.jsonl")) == 12


def test_frame_level_text_output(tmp_path, tiny_bert):
    folder = write_conv(tmp_path / "conv")
    extract(text_cfg(folder, tiny_bert, tmp_path, frames=True, max_frames=4), log=lambda m: None)
    frames = load_file(str(folder / "features.frames-text.safetensors"))
    assert set(frames) == {f"d{d}_{t}" for d in range(3) for t in range(4)}
    assert all(f.dtype == np.float16 and f.shape[1] == 16 and 2 <= f.shape[0] <= 4 for f in frames.values())


def test_extracted_features_train_a_model(tmp_path, tiny_bert):
    from lpgnet import load_config, train

    rows = [
        {
            "utt_id": f"d{d}_{t}",
            "dialog_id": f"d{d}",
            "turn": t,
            "label": ["pos", "neg"][(d + t) % 2],
            "text": "i am " + ("happy" if (d + t) % 2 == 0 else "sad"),
        }
        for d in range(12)
        for t in range(4)
    ]
    folder = write_conv(tmp_path / "conv", rows)
    extract(text_cfg(folder, tiny_bert, tmp_path), log=lambda m: None)
    ids = [f"d{d}" for d in range(12)]
    (folder / "splits.json").write_text(json.dumps({"p": {"train": ids[:8], "valid": ids[8:10], "test": ids[10:]}}))
    cfg = load_config(
        None,
        [
            "data.source=jsonl",
            f"data.path={folder / 'features.jsonl'}",
            f"data.splits={folder / 'splits.json'}",
            "data.protocol=p",
            "data.text_feature=text_emb",
            "model.name=linear",
            "model.modalities=[text]",
            "train.epochs=30",
            "train.progress=false",
            "train.lr=0.05",
        ],
    )
    result = train(cfg, log=lambda m: None, out_dir=tmp_path / "run")
    assert result.metrics["test"]["accuracy"] > 0.9  # "happy" vs "sad" is all there is to learn
    # the extraction report records its encoder, so the run can embed new raw text the same way
    from lpgnet.serving.predict import Predictor

    predictor = Predictor.from_run(tmp_path / "run")
    vec = read(folder / "features.jsonl")[0]["text_emb"]
    raw, pre = predictor.predict([{"text": "i am happy"}]), predictor.predict([{"text_emb": vec}])
    np.testing.assert_allclose(list(raw[0]["probs"].values()), list(pre[0]["probs"].values()), atol=1e-5)


def test_bad_audio_is_named_and_skipped_or_fatal(tmp_path, capsys):
    pytest.importorskip("opensmile")
    sf = pytest.importorskip("soundfile")
    folder = tmp_path / "conv"
    folder.mkdir()
    t = np.arange(4000) / 16000
    sf.write(folder / "ok.wav", 0.2 * np.sin(2 * np.pi * 440 * t), 16000)
    (folder / "corrupt.wav").write_bytes(b"RIFF not really a wav")
    rows = [
        {"utt_id": "ok", "dialog_id": "d", "turn": 0, "text": "x", "audio_path": "ok.wav"},
        {"utt_id": "bad", "dialog_id": "d", "turn": 1, "text": "x", "audio_path": "corrupt.wav"},
        {"utt_id": "gone", "dialog_id": "d", "turn": 2, "text": "x", "audio_path": str(folder / "missing.wav")},
        {"utt_id": "none", "dialog_id": "d", "turn": 3, "text": "x"},
    ]
    write_conv(folder, rows)
    args = ["extract", "--data", str(folder), "--audio-encoder", "egemaps", "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    report = json.loads((folder / "features.extract-report.json").read_text())
    assert report["skipped"] == {"undecodable audio": 1, "audio file not found": 1, "no audio_path": 1}
    assert any("'bad'" in e and "corrupt.wav" in e for e in report["examples"])
    assert [r["utt_id"] for r in read(folder / "features.jsonl")] == ["ok"]
    assert len(read(folder / "features.jsonl")[0]["audio_emb"]) == 88
    capsys.readouterr()
    assert main(args + ["--strict", "--out", str(tmp_path / "s.jsonl")]) == 2
    assert "utterance 'gone'" in capsys.readouterr().err and not (tmp_path / "s.jsonl").exists()


def test_shards_fill_one_cache_and_the_merge_writes_the_one_process_output(tmp_path, tiny_bert, capsys):
    from lpgnet.cli import main

    folder = write_conv(tmp_path / "conv")
    args = ["extract", "--data", str(folder), "--text-encoder", str(tiny_bert), "--text-pooling", "mean",
            "--batch-size", "4", "--cache-dir", str(tmp_path / "shared")]  # fmt: skip
    assert main([*args, "--shard", "1/2"]) == 0
    assert not (folder / "features.jsonl").exists()  # a shard writes the cache and its marker only
    assert main(["merge", "--out", str(folder / "features.jsonl"), "--shards", "2"]) == 2
    assert "extraction shards not done" in capsys.readouterr().err
    assert main([*args, "--shard", "0/2"]) == 0
    assert main([*args, "--shard", "0/2"]) == 0 and "already done" in capsys.readouterr().out
    assert main(["merge", "--out", str(folder / "features.jsonl"), "--shards", "2"]) == 0
    shards = read(folder / "features.jsonl")
    # the one-process extraction, computed afresh in another cache: the same lines; the
    # vectors agree to float precision (the shards batched the texts differently)
    assert main([*args[:-1], str(tmp_path / "own"), "--out", str(tmp_path / "one.jsonl")]) == 0
    one = read(tmp_path / "one.jsonl")
    assert [{k: v for k, v in o.items() if k != "text_emb"} for o in one] == [
        {k: v for k, v in o.items() if k != "text_emb"} for o in shards
    ]
    np.testing.assert_allclose([o["text_emb"] for o in shards], [o["text_emb"] for o in one], rtol=1e-5, atol=1e-6)
    stores = list((tmp_path / "shared" / "items").glob("*/shard-*.safetensors"))
    assert len(stores) == 2 and all(str(os.getpid()) in p.name for p in stores)  # one per shard process, named apart
