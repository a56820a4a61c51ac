"""From raw corpus folders to a trained, re-scored model, through the command line only:
``lpgnet prepare`` -> ``lpgnet extract`` -> ``lpgnet train`` -> ``lpgnet evaluate``, on a
small IEMOCAP-shaped tree and a small MELD-shaped tree built here (tones for speech,
a tiny random BERT for text)."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from lpgnet.cli import main

sf = pytest.importorskip("soundfile")

EMOTIONS = {"ang": ("angry", 220), "hap": ("happy", 440), "neu": ("fine", 660), "sad": ("sad", 880)}


def tone(path, freq, seconds=0.3, sr=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, 0.2 * np.sin(2 * np.pi * freq * t), sr)


def make_iemocap(root, sessions=(1, 2, 3, 5), dialogs=3, turns=6):
    """Sessions of dialogues whose words and tone pitch follow the emotion."""
    codes = list(EMOTIONS)
    for s in sessions:
        for d in range(dialogs):
            dialog = f"Ses0{s}F_impro0{d}"
            labels, lines = [], []
            for t in range(turns):
                code = codes[(s + d + t) % 4]
                word, freq = EMOTIONS[code]
                utt = f"{dialog}_{'FM'[t % 2]}{t // 2:03d}"
                start, end = 2.0 * t, 2.0 * t + 1.5
                labels += [f"[{start:.4f} - {end:.4f}]\t{utt}\t{code}\t[2.5000, 2.5000, 2.5000]", ""]
                lines.append(f"{utt} [{start:08.4f}-{end:08.4f}]: i am so {word}")
                tone(root / f"Session{s}/sentences/wav/{dialog}/{utt}.wav", freq)
            for rel, text in (
                (f"Session{s}/dialog/EmoEvaluation/{dialog}.txt", labels),
                (f"Session{s}/dialog/transcriptions/{dialog}.txt", lines),
            ):
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text("\n".join(text) + "\n")
    return root


def run(argv):
    assert main([str(a) for a in argv]) == 0, argv


def train_and_evaluate(tmp_path, config_lines, capsys):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("\n".join(config_lines) + "\n")
    run(["train", "--config", cfg, "--out", tmp_path / "run"])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    capsys.readouterr()
    run(["evaluate", "--run", tmp_path / "run"])
    assert "matches" in capsys.readouterr().out
    return metrics


def test_iemocap_tree_to_trained_model(tmp_path, tiny_bert, capsys):
    pytest.importorskip("opensmile")
    root = make_iemocap(tmp_path / "IEMOCAP_full_release")
    prep = tmp_path / "prepared"
    run(["prepare", "iemocap", "--root", root, "--out", prep])
    run(
        [
            "extract",
            "--data",
            prep,
            "--text-encoder",
            tiny_bert,
            "--text-pooling",
            "mean",
            "--audio-encoder",
            "egemaps",
            "--cache-dir",
            tmp_path / "cache",
        ]
    )
    rows = [json.loads(line) for line in (prep / "features.jsonl").read_text().splitlines()]
    assert len(rows) == 4 * 3 * 6 and len(rows[0]["text_emb"]) == 16 and len(rows[0]["audio_emb"]) == 88
    metrics = train_and_evaluate(
        tmp_path,
        [
            "model: {name: lpgnet, d_model: 32, heads: 2}",
            f"data: {{source: jsonl, path: {prep / 'features.jsonl'}, splits: {prep / 'splits.json'}, protocol: session5,",
            "       label_field: label4, text_feature: text_emb, audio_feature: audio_emb, valid_fraction: 0.2}",
            "train: {epochs: 25, lr: 3.0e-3, progress: false}",
        ],
        capsys,
    )
    assert metrics["test"]["labels"] == ["ang", "hap", "neu", "sad"]
    assert metrics["test"]["accuracy"] > 0.5  # words and pitch give the emotion away; chance is 0.25


def make_meld(root, with_clips):
    header = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
    emotions = {"anger": ("angry", 220), "joy": ("happy", 440), "neutral": ("fine", 660), "sadness": ("sad", 880)}
    folders = {"train": "train/train_splits", "dev": "dev_splits_complete", "test": "test/output_repeated_splits_test"}
    for split, dialogs in (("train", 8), ("dev", 2), ("test", 3)):
        lines = [header]
        for d in range(dialogs):
            for u in range(5):
                emo = list(emotions)[(d + u) % 4]
                word, freq = emotions[emo]
                lines.append(
                    f'{len(lines)},"i am so {word}",{"Ross" if u % 2 else "Rachel"},{emo},neutral,{d},{u},1,1,'
                    '"00:00:01,000","00:00:02,000"\n'
                )
                if with_clips:
                    clip = root / folders[split] / f"dia{d}_utt{u}.mp4"
                    clip.parent.mkdir(parents=True, exist_ok=True)
                    subprocess.run(
                        [
                            "ffmpeg",
                            "-loglevel",
                            "error",
                            "-f",
                            "lavfi",
                            "-i",
                            f"sine=frequency={freq}:duration=0.3",
                            "-c:a",
                            "aac",
                            str(clip),
                        ],
                        check=True,
                    )
        (root / f"{split}_sent_emo.csv").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{split}_sent_emo.csv").write_text("".join(lines))
    return root


def test_meld_tree_to_trained_model(tmp_path, tiny_bert, capsys):
    """With ffmpeg, the clips' audio is decoded and used; without it, MELD is text-only."""
    audio = shutil.which("ffmpeg") is not None
    root = make_meld(tmp_path / "MELD.Raw", with_clips=audio)
    prep = tmp_path / "prepared"
    run(["prepare", "meld", "--root", root, "--out", prep] + ([] if audio else ["--text-only"]))
    extract = ["extract", "--data", prep, "--text-encoder", tiny_bert, "--cache-dir", tmp_path / "cache"]
    if audio:
        pytest.importorskip("opensmile")
        extract += ["--audio-encoder", "egemaps"]
    run(extract)
    modalities = "[text, audio]" if audio else "[text]"
    metrics = train_and_evaluate(
        tmp_path,
        [
            f"model: {{name: lpgnet, d_model: 32, heads: 2, modalities: {modalities}}}",
            f"data: {{source: jsonl, path: {prep / 'features.jsonl'}, splits: {prep / 'splits.json'}, protocol: meld,",
            "       label_field: label, text_feature: text_emb" + (", audio_feature: audio_emb}" if audio else "}"),
            "train: {epochs: 25, lr: 3.0e-3, progress: false}",
        ],
        capsys,
    )
    assert metrics["test"]["accuracy"] > 0.5
