"""Predicting new conversations with a trained run: precomputed or raw inputs, missing
modalities, streaming one utterance at a time, and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import LABELS, quick_run, write_corpus
from lpgnet.cli import main
from lpgnet.serving.predict import Predictor


def test_predictions_match_the_model_and_name_labels_and_gates(tmp_path):
    rows = write_corpus(tmp_path)
    run = quick_run(tmp_path)
    predictor = Predictor.from_run(run)
    dialogue = [r for r in rows if r["dialog_id"] == "d14"]
    preds = predictor.predict(dialogue)
    with torch.no_grad():
        out = predictor.model(
            torch.tensor([[r["tf"] for r in dialogue]]),
            torch.tensor([[r["af"] for r in dialogue]]),
            torch.ones(1, len(dialogue), dtype=torch.bool),
        )
    probs = out.logits.softmax(-1)[0]
    for i, p in enumerate(preds):
        assert p["utt_id"] == dialogue[i]["utt_id"] and set(p["probs"]) == set(LABELS)
        np.testing.assert_allclose([p["probs"][c] for c in LABELS], probs[i].numpy(), atol=1e-6)
        assert p["label"] == LABELS[int(probs[i].argmax())]
        assert abs(sum(p["gates"].values()) - 1) < 1e-5 and p["missing"] == []
    # numpy vectors (how a Python caller holds them) are taken as they are, with the same answer
    arrays = [{**r, "tf": np.asarray(r["tf"], np.float32), "af": np.asarray(r["af"])} for r in dialogue]
    for a, p in zip(predictor.predict(arrays), preds):
        assert a["probs"] == pytest.approx(p["probs"])
    session = predictor.stream()
    session.add(arrays[0])
    assert json.loads(json.dumps(session.state()))["history"][0]["af"] == pytest.approx(dialogue[0]["af"])


def test_missing_audio_is_predicted_from_text_through_the_gates(tmp_path):
    rows = write_corpus(tmp_path)
    predictor = Predictor.from_run(quick_run(tmp_path))
    dialogue = [dict(r) for r in rows if r["dialog_id"] == "d14"]
    del dialogue[1]["af"]
    for r in dialogue:
        r.pop("text")  # no raw text either: the text vector is what there is
    preds = predictor.predict(dialogue)
    assert preds[1]["missing"] == ["audio"] and preds[1]["gates"]["audio"] == 0.0 and preds[1]["gates"]["text"] == 1.0
    assert preds[0]["missing"] == [] and preds[0]["gates"]["audio"] > 0


def test_an_utterance_with_no_input_or_a_wrong_vector_is_a_clear_error(tmp_path):
    write_corpus(tmp_path)
    predictor = Predictor.from_run(quick_run(tmp_path))
    with pytest.raises(Exception, match="utterance 0: no input at all"):
        predictor.predict([{"speaker": "A"}])
    with pytest.raises(
        Exception,
        match="utterance 0: field 'af': expected a list of 3 numbers \\(the run's audio feature size\\), got a list of",
    ):
        predictor.predict([{"tf": [0.0] * 6, "af": [1.0, 2.0]}])
    with pytest.raises(Exception, match="field 'af': expected a list of 3 numbers .*, got an array of shape \\(2,\\)"):
        predictor.predict([{"tf": [0.0] * 6, "af": np.zeros(2)}])
    with pytest.raises(Exception, match="raw text given, but the run has no text encoder on record"):
        predictor.predict([{"text": "hello", "af": [0.0] * 3}])


def test_raw_text_through_the_runs_frozen_encoder(tmp_path, tiny_bert):
    rows = write_corpus(tmp_path)
    run = quick_run(
        tmp_path,
        f"data.text_encoder.encoder={tiny_bert}",
        "data.text_encoder.pooling=mean",
        f"data.text_encoder.cache_dir={tmp_path / 'cache'}",
        text_feature=None,
    )
    predictor = Predictor.from_run(run)
    dialogue = [r for r in rows if r["dialog_id"] == "d14"]
    from lpgnet.config import TextEncoderConfig
    from lpgnet.features.text import encode, load_encoder

    vecs = encode(*load_encoder(tiny_bert), [r["text"] for r in dialogue], TextEncoderConfig(pooling="mean"))
    predictor.fields["text"] = "vec"  # the same vectors given as a precomputed field must agree
    raw = predictor.predict([{"text": r["text"], "af": r["af"]} for r in dialogue])
    pre = predictor.predict([{"vec": v.tolist(), "af": r["af"]} for v, r in zip(vecs, dialogue)])
    for a, b in zip(raw, pre):
        np.testing.assert_allclose(list(a["probs"].values()), list(b["probs"].values()), atol=1e-5)


def test_a_fine_tuned_text_run_embeds_raw_text_with_its_kept_encoder(tmp_path, tiny_bert):
    import shutil

    rows = write_corpus(tmp_path)
    run = quick_run(
        tmp_path,
        f"data.text_encoder.encoder={tiny_bert}",
        "data.text_encoder.finetune.enabled=true",
        "data.text_encoder.finetune.epochs=1",
        "data.text_encoder.pooling=mean",
        f"data.text_encoder.cache_dir={tmp_path / 'cache'}",
        text_feature=None,
    )
    kept = json.loads((run / "metrics.json").read_text())["text_encoder_dir"]
    assert kept.startswith(str(tmp_path / "cache"))  # in the feature cache, once, not copied into every run
    dialogue = [r for r in rows if r["dialog_id"] == "d14"]
    from lpgnet.config import TextEncoderConfig
    from lpgnet.features.text import encode, load_encoder

    vecs = encode(*load_encoder(kept), [r["text"] for r in dialogue], TextEncoderConfig(pooling="mean"))
    predictor = Predictor.from_run(run)
    raw = predictor.predict([{"text": r["text"], "af": r["af"]} for r in dialogue])
    pre = predictor.predict([{"text_emb": v.tolist(), "af": r["af"]} for v, r in zip(vecs, dialogue)])
    for a, b in zip(raw, pre):
        np.testing.assert_allclose(list(a["probs"].values()), list(b["probs"].values()), atol=1e-5)
    shutil.rmtree(kept)
    with pytest.raises(Exception, match="fine-tuned during its training, which is no longer at"):
        Predictor.from_run(run).predict([{"text": rows[0]["text"], "af": rows[0]["af"]}])


@pytest.mark.parametrize("causal", [True, False])
def test_streaming_one_utterance_at_a_time(tmp_path, causal):
    rows = write_corpus(tmp_path)
    predictor = Predictor.from_run(quick_run(tmp_path, f"model.causal={str(causal).lower()}"))
    dialogue = [r for r in rows if r["dialog_id"] == "d15"]
    session = predictor.stream()
    streamed = [session.add(r) for r in dialogue]
    full = predictor.predict(dialogue)
    for i, (s, f) in enumerate(zip(streamed, full)):
        same = np.allclose(list(s["probs"].values()), list(f["probs"].values()), atol=1e-5)
        # causal: each streamed answer is final; full-dialogue: only the last one is sure to be
        assert same if causal or i == len(dialogue) - 1 else True
    with pytest.raises(Exception, match="no input at all"):
        session.add({"speaker": "A"})
    assert len(session.history) == len(dialogue)  # a refused utterance is not kept


def test_predict_command_on_jsonl_and_csv(tmp_path, capsys):
    rows = write_corpus(tmp_path)
    run = quick_run(tmp_path)
    out = tmp_path / "pred.jsonl"
    assert main(["predict", "--run", str(run), "--input", str(tmp_path / "conv.jsonl"), "--out", str(out)]) == 0
    preds = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(preds) == len(rows) and {p["dialog_id"] for p in preds} == {r["dialog_id"] for r in rows}
    csv_file = tmp_path / "conv.csv"
    lines = ["dialog_id,turn,tf,af"] + [
        f'd0,{r["turn"]},"{r["tf"]}","{r["af"]}"' for r in rows if r["dialog_id"] == "d0"
    ][::-1]
    csv_file.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["predict", "--run", str(run), "--input", str(csv_file)]) == 0
    from_csv = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [p["turn"] for p in from_csv] == [0, 1, 2, 3, 4]  # ordered by turn, not file order
    by_id = {p["utt_id"]: p for p in preds}
    for p in from_csv:
        np.testing.assert_allclose(
            list(p["probs"].values()), list(by_id[f"d0_{p['turn']}"]["probs"].values()), atol=1e-6
        )
    assert main(["predict", "--run", str(run), "--input", str(csv_file), "--out", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["predict", "--run", str(run), "--input", str(tmp_path / "nope.jsonl")]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.parametrize("causal", [False, True])
def test_a_long_conversation_is_answered_window_by_window_in_bounded_memory(tmp_path, causal):
    from lpgnet.data.windows import context_windows

    rows = write_corpus(tmp_path)  # dialogues of 5 turns: trained as windows of 4 too
    predictor = Predictor.from_run(quick_run(tmp_path, "data.context_window=4", f"model.causal={str(causal).lower()}"))
    seen = []
    predictor.model.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[1]))
    long = rows[:23]  # one conversation of 23 utterances
    preds = predictor.predict(long)
    assert max(seen) == 4 and len(preds) == 23  # the model never saw more than the window
    for w in context_windows(23, 4, causal):  # each utterance from its own window
        part = predictor.predict(long[w.start : w.stop])
        for i in range(w.keep_start, w.keep_stop):
            np.testing.assert_allclose(
                list(preds[i]["probs"].values()), list(part[i - w.start]["probs"].values()), atol=1e-6
            )
    session = predictor.stream()
    streamed = [session.add(r) for r in long]
    assert len(session.history) == 3 and session.seen == 23  # the context kept is bounded too
    np.testing.assert_allclose(list(streamed[-1]["probs"].values()), list(preds[-1]["probs"].values()), atol=1e-6)
