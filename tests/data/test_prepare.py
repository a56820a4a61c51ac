"""lpgnet prepare: IEMOCAP-, MELD- and table-shaped inputs -> the generic JSONL format.

The corpora are tiny trees built in tmp_path with the real layouts. Every bad-input case
is checked twice: skipped and counted by default, fatal (exit 2, one error line naming
the file and the utterance) with --strict.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from lpgnet.cli import main
from lpgnet.data.conversation import IGNORE
from lpgnet.data.jsonl import load_jsonl_bundle
from lpgnet.data.prepare import common, iemocap, meld, table

NO_FEATURES = {"text": None, "audio": None}


def tone(path, seconds=0.05, sr=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, 0.1 * np.sin(2 * np.pi * 440 * t), sr)


def read_rows(out):
    return [json.loads(line) for line in (out / "utterances.jsonl").read_text(encoding="utf-8").splitlines()]


def run_cli(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# ----------------------------------------------------------------------------- IEMOCAP

# session -> dialogue -> (utterance id, start, end, code, text); listed out of time order on purpose.
# A made-up corpus in IEMOCAP's layout: the dialogue names (impro90, script90_1) do not exist in
# IEMOCAP, and no text, time or label here comes from ../shared/data.
IEMOCAP = {
    1: {
        "Ses01F_impro90": [
            ("Ses01F_impro90_M000", 8.9, 10.1, "exc", "Yes?"),
            ("Ses01F_impro90_F000", 6.25, 8.5, "neu", "Pardon, one moment."),
            ("Ses01F_impro90_F001", 10.5, 11.4, "fru", "I've been waiting, [LAUGHTER] for ages."),
            ("Ses01F_impro90_M001", 12.0, 13.0, "xxx", "Sorry."),
        ],
        "Ses01M_script90_1": [
            ("Ses01M_script90_1_M000", 1.0, 2.0, "ang", "Get out."),
            ("Ses01M_script90_1_F000", 2.5, 3.0, "sad", "Fine."),
            ("Ses01M_script90_1_F001", 0.2, 0.9, "hap", "Hello!"),
        ],
    },
    5: {
        "Ses05F_impro90": [
            ("Ses05F_impro90_F000", 1.0, 2.0, "sur", "Oh!"),
            ("Ses05F_impro90_M000", 2.5, 3.5, "hap", "Surprise."),
        ],
    },
}


def label_file(session, dialog):
    return f"Session{session}/dialog/EmoEvaluation/{dialog}.txt"


def transcript_file(session, dialog):
    return f"Session{session}/dialog/transcriptions/{dialog}.txt"


def make_iemocap(tmp_path):
    root = tmp_path / "IEMOCAP_full_release"
    for session, dialogs in IEMOCAP.items():
        for dialog, utts in dialogs.items():
            labels = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
            for utt, start, end, code, _ in utts:
                labels += [
                    f"[{start:.4f} - {end:.4f}]\t{utt}\t{code}\t[2.5000, 2.5000, 2.5000]",
                    "C-E2:\tNeutral;\t()",
                    "A-E3:\tval 3; act 2; dom  2;\t()",
                    "",
                ]
                tone(root / f"Session{session}/sentences/wav/{dialog}/{utt}.wav")
            transcript = [
                f"{utt} [{start:08.4f}-{end:08.4f}]: {text}"
                for utt, start, end, _, text in sorted(utts, key=lambda u: u[1])
            ]
            transcript += [f"{dialog}_MX00 [000.0000-000.5000]: overlapping talk", "M: speaker-only line"]
            for rel, lines in ((label_file(session, dialog), labels), (transcript_file(session, dialog), transcript)):
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text("\n".join(lines) + "\n")
    (root / "Session1/dialog/EmoEvaluation/Categorical").mkdir()  # real subfolders: not *.txt at this level
    return root


def test_iemocap_fields_order_labels_speakers_and_splits(tmp_path):
    root = make_iemocap(tmp_path)
    result = iemocap.prepare_iemocap(root, tmp_path / "out")
    rows = read_rows(tmp_path / "out")
    assert result.utterances == len(rows) == 9 and result.dialogues == 3 and not result.problems.counts
    assert [r["dialog_id"] for r in rows] == ["Ses01F_impro90"] * 4 + ["Ses01M_script90_1"] * 3 + ["Ses05F_impro90"] * 2
    assert set(rows[0]) == {
        "utt_id",
        "dialog_id",
        "turn",
        "session",
        "speaker",
        "text",
        "label",
        "label4",
        "label6",
        "start",
        "end",
        "audio_path",
    }
    by_id = {r["utt_id"]: r for r in rows}
    # ordered by start time, turn = 0-based position
    assert [r["utt_id"] for r in rows[4:7]] == [
        "Ses01M_script90_1_F001",
        "Ses01M_script90_1_M000",
        "Ses01M_script90_1_F000",
    ]
    assert [r["turn"] for r in rows] == [0, 1, 2, 3, 0, 1, 2, 0, 1]
    assert by_id["Ses01F_impro90_F000"] == {
        "utt_id": "Ses01F_impro90_F000",
        "dialog_id": "Ses01F_impro90",
        "turn": 0,
        "session": 1,
        "speaker": "Ses01_F",
        "text": "Pardon, one moment.",
        "label": "neu",
        "label4": "neu",
        "label6": "neu",
        "start": 6.25,
        "end": 8.5,
        "audio_path": str(root / "Session1/sentences/wav/Ses01F_impro90/Ses01F_impro90_F000.wav"),
    }
    # the speaker is the letter of the utterance, not of the dialogue name
    assert (
        by_id["Ses01M_script90_1_F000"]["speaker"] == "Ses01_F" and by_id["Ses05F_impro90_M000"]["speaker"] == "Ses05_M"
    )
    codes = {u: (by_id[u]["label"], by_id[u]["label4"], by_id[u]["label6"]) for u in by_id}
    assert codes["Ses01F_impro90_M000"] == ("exc", "hap", "exc")  # excited merged into happy for 4 classes
    assert codes["Ses01F_impro90_F001"] == ("fru", None, "fru")
    assert codes["Ses01F_impro90_M001"] == ("xxx", None, None)
    assert codes["Ses05F_impro90_F000"] == ("sur", None, None)
    assert codes["Ses01M_script90_1_F001"] == ("hap", "hap", "hap")
    assert by_id["Ses01F_impro90_F001"]["text"] == "I've been waiting, [LAUGHTER] for ages."
    assert json.loads((tmp_path / "out/splits.json").read_text()) == {
        "session5": {"train": ["Ses01F_impro90", "Ses01M_script90_1"], "test": ["Ses05F_impro90"]}
    }
    report = json.loads((tmp_path / "out/prepare-report.json").read_text())
    assert report["skipped"] == {} and report["utterances"] == 9
    assert any("not utterances" in n and n.endswith(": 6") for n in report["notes"])  # 2 ignored lines x 3 dialogues


def test_iemocap_output_loads_with_the_jsonl_reader(tmp_path):
    make_iemocap(tmp_path)
    iemocap.prepare_iemocap(tmp_path / "IEMOCAP_full_release", tmp_path / "out")
    data, splits = tmp_path / "out/utterances.jsonl", tmp_path / "out/splits.json"
    bundle = load_jsonl_bundle(
        data, splits, "session5", "label4", ["ang", "hap", "neu", "sad"], NO_FEATURES, read_text=True
    )
    assert [d.dialog_id for d in bundle.splits["test"]] == ["Ses05F_impro90"]
    d = next(d for d in bundle.splits["train"] if d.dialog_id == "Ses01F_impro90")
    assert d.labels.tolist() == [2, 1, IGNORE, IGNORE]  # neu, exc->hap, fru, xxx
    assert d.texts[0] == "Pardon, one moment." and d.speakers[:2] == ["Ses01_F", "Ses01_M"]
    loso = load_jsonl_bundle(data, None, "loso-1", "label6", None, NO_FEATURES)
    assert {x.dialog_id for x in loso.splits["test"]} == {"Ses01F_impro90", "Ses01M_script90_1"}


def _replace_line(path, startswith, new):
    lines = path.read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith(startswith))
    lines[i : i + 1] = [new] if new is not None else []
    path.write_text("\n".join(lines) + "\n")
    return i + 1


def _line_of(path, needle):
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def drop_transcript(root):
    _replace_line(root / transcript_file(1, "Ses01F_impro90"), "Ses01F_impro90_F001", None)
    f = root / label_file(1, "Ses01F_impro90")
    return f"{f}:{_line_of(f, 'Ses01F_impro90_F001')}"


def drop_wav(root):
    (root / "Session1/sentences/wav/Ses01F_impro90/Ses01F_impro90_M000.wav").unlink()
    f = root / label_file(1, "Ses01F_impro90")
    return f"{f}:{_line_of(f, 'Ses01F_impro90_M000')}"


def break_label_line(root):
    f = root / label_file(1, "Ses01F_impro90")
    return f"{f}:{_replace_line(f, '[10.5000', '[10.5000 - ]	Ses01F_impro90_F001	fru')}"


def unknown_code(root):
    f = root / label_file(1, "Ses01F_impro90")
    return f"{f}:{_replace_line(f, '[10.5000', '[10.5000 - 11.4000]	Ses01F_impro90_F001	joy	[2.5, 2.5, 2.5]')}"


def duplicate_label(root):
    f = root / label_file(5, "Ses05F_impro90")
    f.write_text(f.read_text() + "[4.0000 - 5.0000]\tSes05F_impro90_M000\tneu\t[2.5, 2.5, 2.5]\n")
    return f"{f}:{len(f.read_text().splitlines())}"


def extra_transcript(root):
    f = root / transcript_file(5, "Ses05F_impro90")
    f.write_text(f.read_text() + "Ses05F_impro90_F009 [009.0000-010.0000]: Nobody labelled me.\n")
    return f"{f}:{len(f.read_text().splitlines())}"


def unreadable_transcript(root):
    f = root / transcript_file(5, "Ses05F_impro90")
    f.unlink()
    f.mkdir()  # a folder where the file should be: unreadable even for root
    return str(f)


IEMOCAP_BAD = [  # (break the tree, returns the expected location; kind; utterance named; utterances lost)
    (drop_transcript, "missing_transcription", "Ses01F_impro90_F001", {"Ses01F_impro90_F001"}),
    (drop_wav, "missing_audio", "Ses01F_impro90_M000", {"Ses01F_impro90_M000"}),
    (break_label_line, "malformed_line", "Ses01F_impro90_F001", {"Ses01F_impro90_F001"}),
    (unknown_code, "malformed_line", "Ses01F_impro90_F001", {"Ses01F_impro90_F001"}),
    (duplicate_label, "duplicate", "Ses05F_impro90_M000", set()),
    (extra_transcript, "missing_label", "Ses05F_impro90_F009", set()),
    (unreadable_transcript, "unreadable_file", None, {"Ses05F_impro90_F000", "Ses05F_impro90_M000"}),
]


@pytest.mark.parametrize("breaker,kind,utt_id,lost", IEMOCAP_BAD, ids=[c[0].__name__ for c in IEMOCAP_BAD])
def test_iemocap_bad_input_is_skipped_and_counted(tmp_path, capsys, breaker, kind, utt_id, lost):
    root = make_iemocap(tmp_path)
    where = breaker(root)
    code, out, _ = run_cli(["prepare", "iemocap", "--root", str(root), "--out", str(tmp_path / "out")], capsys)
    assert code == 0
    report = json.loads((tmp_path / "out/prepare-report.json").read_text())
    assert report["skipped"][kind] == 1
    assert report["examples"][kind][0].startswith(f"{where}: " + (f"{utt_id}: " if utt_id else ""))
    assert f"{kind}: 1" in out and "skipped" in out
    written = {r["utt_id"] for r in read_rows(tmp_path / "out")}
    assert written == {u[0] for d in IEMOCAP.values() for utts in d.values() for u in utts} - lost
    if kind == "malformed_line":
        assert "missing_label" not in report["skipped"]  # its transcript line is not reported a second time
    if kind == "duplicate":  # the first label line wins
        assert next(r for r in read_rows(tmp_path / "out") if r["utt_id"] == utt_id)["label"] == "hap"


@pytest.mark.parametrize("breaker,kind,utt_id,lost", IEMOCAP_BAD, ids=[c[0].__name__ for c in IEMOCAP_BAD])
def test_iemocap_bad_input_is_fatal_when_strict(tmp_path, capsys, breaker, kind, utt_id, lost):
    root = make_iemocap(tmp_path)
    where = breaker(root)
    code, out, err = run_cli(
        ["prepare", "iemocap", "--root", str(root), "--out", str(tmp_path / "out"), "--strict"], capsys
    )
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"error: {where}: ")
    assert utt_id is None or utt_id in err
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir()] == ["IEMOCAP_full_release"]


def test_iemocap_unusable_root_is_always_fatal(tmp_path, capsys):
    for root, message in ((tmp_path / "absent", "folder not found"), (tmp_path, "no Session*/dialog/EmoEvaluation")):
        code, _, err = run_cli(["prepare", "iemocap", "--root", str(root), "--out", str(tmp_path / "out")], capsys)
        assert code == 2 and message in err and str(root) in err
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(
        ["prepare", "iemocap", "--root", str(tmp_path / "file"), "--out", str(tmp_path / "out")], capsys
    )
    assert code == 2 and "not a folder" in err


def test_iemocap_nothing_usable_is_an_error(tmp_path, capsys):
    root = make_iemocap(tmp_path)
    shutil.rmtree(root / "Session1/sentences")
    shutil.rmtree(root / "Session5/sentences")
    code, _, err = run_cli(["prepare", "iemocap", "--root", str(root), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "no utterance could be prepared" in err and "no recording at" in err
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- MELD

MELD_HEADER = b"Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
MELD = {  # split -> rows (utterance bytes, speaker, emotion, sentiment, dialogue, utterance); out of order on purpose
    "train": [
        (b"I\x92m fine.", b"Ross", b"neutral", b"neutral", 0, 1),  # a raw Windows-1252 apostrophe, as in the real files
        (b'"Oh, caf\xc3\xa9!"', b"Rachel", b"joy", b"positive", 0, 0),  # quoted comma; genuine UTF-8
        (b"Why?", b"Monica", b"surprise", b"negative", 0, 2),
        (b"No.", b"Joey", b"anger", b"negative", 10, 0),
        (b"Yes.", b"Chandler", b"sadness", b"negative", 2, 0),
    ],
    "dev": [(b"Hi.", b"Phoebe", b"fear", b"negative", 0, 0), (b"Bye.", b"Ross", b"disgust", b"negative", 0, 1)],
    "test": [(b"Okay.", b"Rachel", b"neutral", b"neutral", 0, 0), (b"Sure.", b"Joey", b"joy", b"positive", 0, 1)],
}
CLIP_FOLDERS = {"train": "train/train_splits", "dev": "dev_splits_complete", "test": "test/output_repeated_splits_test"}


def make_meld(tmp_path, clip=None, edit=None):
    """MELD.Raw with the three CSVs and one clip per row (``clip``: bytes of a real mp4, else a placeholder)."""
    root = tmp_path / "MELD.Raw"
    root.mkdir()
    for split, rows in MELD.items():
        lines = [MELD_HEADER]
        for i, (text, speaker, emo, sent, dia, utt) in enumerate(rows, 1):
            lines.append(
                b",".join(
                    [
                        str(i).encode(),
                        text,
                        speaker,
                        emo,
                        sent,
                        str(dia).encode(),
                        str(utt).encode(),
                        b"3",
                        b"7",
                        b'"00:16:16,059"',
                        b'"00:16:21,731"',
                    ]
                )
                + b"\r\n"
            )
            folder = root / CLIP_FOLDERS[split]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"dia{dia}_utt{utt}.mp4").write_bytes(clip or b"placeholder: prepare checks existence only")
        if edit:
            lines = edit(split, lines)
        (root / f"{split}_sent_emo.csv").write_bytes(b"".join(lines))
    return root


@pytest.fixture
def fake_ffmpeg(monkeypatch):
    """Pretend ffmpeg is installed: prepare only looks clips up, so placeholders do on CI."""
    monkeypatch.setattr(meld, "find_ffmpeg", lambda: "/usr/bin/ffmpeg")


def test_meld_fields_turns_splits_and_decoding(tmp_path, fake_ffmpeg):
    root = make_meld(tmp_path)
    result = meld.prepare_meld(root, tmp_path / "out")
    rows = read_rows(tmp_path / "out")
    assert result.utterances == 9 and not result.problems.counts
    assert [r["utt_id"] for r in rows] == [
        "train_dia0_utt0",
        "train_dia0_utt1",
        "train_dia0_utt2",
        "train_dia2_utt0",
        "train_dia10_utt0",
        "dev_dia0_utt0",
        "dev_dia0_utt1",
        "test_dia0_utt0",
        "test_dia0_utt1",
    ]
    assert rows[0] == {
        "utt_id": "train_dia0_utt0",
        "dialog_id": "train_dia0",
        "turn": 0,
        "split": "train",
        "speaker": "Rachel",
        "text": "Oh, café!",
        "label": "joy",
        "sentiment": "positive",
        "season": 3,
        "episode": 7,
        "start": 976.059,
        "end": 981.731,
        "audio_path": str(root / "train/train_splits/dia0_utt0.mp4"),
    }
    assert rows[1]["text"] == "I\u2019m fine." and [r["turn"] for r in rows[:3]] == [0, 1, 2]
    assert rows[5]["audio_path"] == str(root / "dev_splits_complete/dia0_utt0.mp4")
    assert json.loads((tmp_path / "out/splits.json").read_text()) == {
        "meld": {"train": ["train_dia0", "train_dia2", "train_dia10"], "valid": ["dev_dia0"], "test": ["test_dia0"]}
    }
    report = json.loads((tmp_path / "out/prepare-report.json").read_text())
    assert "lines of train_sent_emo.csv with non-UTF-8 bytes read as Windows-1252: 1" in report["notes"]
    bundle = load_jsonl_bundle(
        tmp_path / "out/utterances.jsonl",
        tmp_path / "out/splits.json",
        "meld",
        "label",
        None,
        NO_FEATURES,
        read_text=True,
    )
    assert len(bundle.splits["valid"]) == 1 and len(bundle.label_names) == 7
    assert bundle.splits["train"][0].texts == ["Oh, café!", "I\u2019m fine.", "Why?"]


def test_meld_text_only_without_ffmpeg_or_when_asked(tmp_path, monkeypatch, capsys):
    root = make_meld(tmp_path)
    for folder in ("train", "dev_splits_complete", "test"):
        shutil.rmtree(root / folder)  # no clip needed when text-only
    monkeypatch.setattr(meld, "find_ffmpeg", lambda: None)
    code, out, _ = run_cli(["prepare", "meld", "--root", str(root), "--out", str(tmp_path / "a")], capsys)
    assert code == 0 and "text-only" in out and "ffmpeg not found on PATH" in out
    assert all("audio_path" not in r for r in read_rows(tmp_path / "a")) and len(read_rows(tmp_path / "a")) == 9
    monkeypatch.setattr(meld, "find_ffmpeg", lambda: "/usr/bin/ffmpeg")
    code, out, _ = run_cli(
        ["prepare", "meld", "--root", str(root), "--out", str(tmp_path / "b"), "--text-only"], capsys
    )
    assert code == 0 and "--text-only given" in out and all("audio_path" not in r for r in read_rows(tmp_path / "b"))


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (needed to make a real mp4 clip)")
def test_meld_with_real_clips_made_by_ffmpeg(tmp_path, capsys):
    mp4 = tmp_path / "tone.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=0.2", "-c:a", "aac", str(mp4)],
        check=True,
        timeout=60,
    )
    root = make_meld(tmp_path, clip=mp4.read_bytes())
    code, out, _ = run_cli(["prepare", "meld", "--root", str(root), "--out", str(tmp_path / "out")], capsys)
    assert code == 0 and "text-only" not in out
    paths = [r["audio_path"] for r in read_rows(tmp_path / "out")]
    assert len(paths) == 9 and all(p.startswith(str(root)) and p.endswith(".mp4") for p in paths)


def meld_row_edit(split, lineno, new):
    def edit(s, lines):
        if s == split:
            lines[lineno - 1] = new
        return lines

    return edit


MELD_BAD = [  # (edit of the CSVs, clip to delete, kind, split file, line, utterance named)
    (None, "train/train_splits/dia0_utt2.mp4", "missing_audio", "train", 4, "train_dia0_utt2"),
    (meld_row_edit("dev", 2, b"1,Hi.,Phoebe,fear,negative,x,0,3,7,a,b\n"), None, "malformed_line", "dev", 2, None),
    (
        meld_row_edit("test", 3, b"2,Sure.,Joey,happy,positive,0,1,3,7,a,b\n"),
        None,
        "malformed_line",
        "test",
        3,
        "test_dia0_utt1",
    ),
    (
        meld_row_edit("test", 3, b"2,Sure.,Joey,joy,positive,0,0,3,7,a,b\n"),
        None,
        "duplicate",
        "test",
        3,
        "test_dia0_utt0",
    ),
    (meld_row_edit("train", 6, b"5,Yes.,Chandler\n"), None, "malformed_line", "train", 6, None),
]
MELD_IDS = ["missing_clip", "bad_dialogue_id", "bad_emotion", "duplicate_turn", "short_row"]


@pytest.mark.parametrize("edit,clip,kind,split,line,utt_id", MELD_BAD, ids=MELD_IDS)
def test_meld_bad_input_skipped_by_default_fatal_when_strict(
    tmp_path, capsys, fake_ffmpeg, edit, clip, kind, split, line, utt_id
):
    root = make_meld(tmp_path, edit=edit)
    if clip:
        (root / clip).unlink()
    where = f"{root / f'{split}_sent_emo.csv'}:{line}: " + (f"{utt_id}: " if utt_id else "")
    code, out, _ = run_cli(["prepare", "meld", "--root", str(root), "--out", str(tmp_path / "out")], capsys)
    report = json.loads((tmp_path / "out/prepare-report.json").read_text())
    assert code == 0 and report["skipped"] == {kind: 1} and report["examples"][kind][0].startswith(where)
    assert len(read_rows(tmp_path / "out")) == 8 and f"{kind}: 1" in out
    code, _, err = run_cli(
        ["prepare", "meld", "--root", str(root), "--out", str(tmp_path / "strict"), "--strict"], capsys
    )
    assert code == 2 and err.startswith(f"error: {where}") and err.count("\n") == 1
    assert not (tmp_path / "strict").exists()


def test_meld_missing_column_or_file_is_always_fatal(tmp_path, capsys, fake_ffmpeg):
    root = make_meld(
        tmp_path, edit=lambda s, lines: [lines[0].replace(b",Sentiment", b"")] + lines[1:] if s == "dev" else lines
    )
    for extra in ([], ["--strict"]):
        code, _, err = run_cli(["prepare", "meld", "--root", str(root), "--out", str(tmp_path / "out"), *extra], capsys)
        assert code == 2 and "missing column 'Sentiment'" in err and "dev_sent_emo.csv" in err
    (root / "dev_sent_emo.csv").unlink()
    code, _, err = run_cli(["prepare", "meld", "--root", str(root), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "dev_sent_emo.csv: file not found" in err and not (tmp_path / "out").exists()


def test_meld_clip_search_reports_the_folders_it_tried(tmp_path, fake_ffmpeg):
    root = make_meld(tmp_path)
    (root / "test").rename(root / "elsewhere")
    result = meld.prepare_meld(root, tmp_path / "out")
    assert result.problems.counts == {"missing_audio": 2}
    assert "no clip folder exists for test" in result.problems.examples["missing_audio"][0]
    assert any("test: no clip folder found" in n for n in result.notes)
    (root / "elsewhere/output_repeated_splits_test").rename(root / "output_repeated_splits_test")  # moved up: found too
    assert not meld.prepare_meld(root, tmp_path / "out", overwrite=True).problems.counts


# ----------------------------------------------------------------------------- table


def make_table(tmp_path, rows=None, header="dialog_id,turn,text,audio_path,label,speaker,split"):
    folder = tmp_path / "mine"
    tone(folder / "wav/a0.wav")
    tone(folder / "wav/a1.wav")
    tone(tmp_path / "elsewhere/b0.wav")
    rows = (
        rows
        if rows is not None
        else [
            "a,1,Second,wav/a1.wav,pos,s2,train",
            "a,0,First,wav/a0.wav,neg,s1,train",
            f'b,0,"Hi, there",{tmp_path / "elsewhere/b0.wav"},,,test',
        ]
    )
    (folder / "conv.csv").write_text("\n".join([header, *rows]) + "\n")
    return folder / "conv.csv"


def test_table_paths_labels_and_given_splits(tmp_path, capsys):
    csv_path = make_table(tmp_path)
    code, out, _ = run_cli(["prepare", "table", "--csv", str(csv_path), "--out", str(tmp_path / "out")], capsys)
    assert code == 0 and "protocol 'given'" in out
    rows = read_rows(tmp_path / "out")
    assert rows == [
        {
            "utt_id": "a_0",
            "dialog_id": "a",
            "turn": 0,
            "text": "First",
            "label": "neg",
            "speaker": "s1",
            "split": "train",
            "audio_path": str(tmp_path / "mine/wav/a0.wav"),
        },
        {
            "utt_id": "a_1",
            "dialog_id": "a",
            "turn": 1,
            "text": "Second",
            "label": "pos",
            "speaker": "s2",
            "split": "train",
            "audio_path": str(tmp_path / "mine/wav/a1.wav"),
        },
        {
            "utt_id": "b_0",
            "dialog_id": "b",
            "turn": 0,
            "text": "Hi, there",
            "label": None,
            "split": "test",
            "audio_path": str(tmp_path / "elsewhere/b0.wav"),
        },
    ]
    assert json.loads((tmp_path / "out/splits.json").read_text()) == {"given": {"train": ["a"], "test": ["b"]}}
    bundle = load_jsonl_bundle(
        tmp_path / "out/utterances.jsonl",
        tmp_path / "out/splits.json",
        "given",
        "label",
        None,
        NO_FEATURES,
        read_text=True,
    )
    assert bundle.splits["test"][0].labels.tolist() == [IGNORE]


def test_table_without_optional_columns_writes_no_splits(tmp_path):
    csv_path = make_table(tmp_path, rows=["a,0,First,wav/a0.wav"], header="dialog_id,turn,text,audio_path")
    result = table.prepare_table(csv_path, tmp_path / "out")
    assert read_rows(tmp_path / "out") == [
        {"utt_id": "a_0", "dialog_id": "a", "turn": 0, "text": "First", "audio_path": str(tmp_path / "mine/wav/a0.wav")}
    ]
    assert not (tmp_path / "out/splits.json").exists() and any("no splits.json" in line for line in result.summary())


TABLE_BAD = [  # (the broken line 3, kind, utterance named)
    ("a,0,First again,wav/a0.wav,neg,s1,train", "duplicate", "a_0"),
    ("a,zero,First,wav/a0.wav,neg,s1,train", "malformed_line", "a_zero"),
    ("a,0,First,wav/missing.wav,neg,s1,train", "missing_audio", "a_0"),
    ("a,0,First", "malformed_line", None),
]


@pytest.mark.parametrize(
    "line3,kind,utt_id", TABLE_BAD, ids=["duplicate_turn", "bad_turn", "missing_audio", "short_row"]
)
def test_table_bad_rows_skipped_by_default_fatal_when_strict(tmp_path, capsys, line3, kind, utt_id):
    csv_path = make_table(tmp_path, rows=["a,1,Second,wav/a1.wav,pos,s2,train", line3, "b,0,Hi,wav/a0.wav,,,test"])
    if kind == "duplicate":
        csv_path.write_text(csv_path.read_text().replace("a,1,Second", "a,0,Second"))
    where = f"{csv_path}:3: " + (f"{utt_id}: " if utt_id else "")
    result = table.prepare_table(csv_path, tmp_path / "out")
    assert result.problems.counts == {kind: 1} and result.problems.examples[kind][0].startswith(where)
    assert result.utterances == 2
    code, _, err = run_cli(
        ["prepare", "table", "--csv", str(csv_path), "--out", str(tmp_path / "s"), "--strict"], capsys
    )
    assert code == 2 and err.startswith(f"error: {where}") and not (tmp_path / "s").exists()


def test_table_protocol_mistakes_and_missing_columns_are_always_fatal(tmp_path, capsys):
    cases = [
        (dict(rows=["a,0,First,wav/a0.wav,neg,s1,dev"]), ":2: a_0: split 'dev': expected one of train, valid, test"),
        (
            dict(rows=["a,0,First,wav/a0.wav,neg,s1,train", "a,1,Then,wav/a1.wav,neg,s1,test"]),
            ":3: a_1: split 'test', but line 2 puts dialogue 'a' in 'train'",
        ),
        (dict(rows=["a,0,First,wav/a0.wav"], header="dialog_id,turn,text,audio"), ": missing column 'audio_path'"),
        (dict(rows=["a,0,wav/a0.wav"], header="dialog_id,turn,audio_path"), ": missing column 'text'"),
    ]
    for kwargs, message in cases:
        csv_path = make_table(tmp_path, **kwargs)
        for extra in ([], ["--strict"]):
            code, _, err = run_cli(
                ["prepare", "table", "--csv", str(csv_path), "--out", str(tmp_path / "out"), *extra], capsys
            )
            assert code == 2 and err.startswith(f"error: {csv_path}{message}"), err
    code, _, err = run_cli(
        ["prepare", "table", "--csv", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "out")], capsys
    )
    assert code == 2 and "nope.csv: file not found" in err and not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- output folder


def test_existing_output_is_refused_then_replaced_only_when_complete(tmp_path, capsys):
    csv_path = make_table(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    table.prepare_table(csv_path, out)  # an empty folder is fine
    (out / "mine.txt").write_text("keep me")
    argv = ["prepare", "table", "--csv", str(csv_path), "--out", str(out)]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and "not empty (pass --overwrite" in err and (out / "mine.txt").exists()
    csv_path.write_text(csv_path.read_text() + "c,0,Lost,wav/missing.wav,neg,s1,train\n")
    code, _, err = run_cli([*argv, "--overwrite", "--strict"], capsys)  # fails: the old output stays as it was
    assert code == 2 and "missing.wav" in err and (out / "mine.txt").read_text() == "keep me"
    code, out_text, _ = run_cli([*argv, "--overwrite"], capsys)
    assert code == 0 and not (out / "mine.txt").exists() and len(read_rows(out)) == 3
    assert sorted(p.name for p in out.iterdir()) == ["prepare-report.json", "splits.json", "utterances.jsonl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "mine", "out"]  # no temporary folder left behind
    code, _, err = run_cli(
        ["prepare", "table", "--csv", str(csv_path), "--out", str(tmp_path / "mine"), "--overwrite"], capsys
    )
    assert (
        code == 2 and "would contain the input" in err and csv_path.exists()
    )  # --overwrite must never delete the input
    (tmp_path / "a-file").write_text("x")
    code, _, err = run_cli(["prepare", "table", "--csv", str(csv_path), "--out", str(tmp_path / "a-file")], capsys)
    assert code == 2 and "is not a folder" in err


def test_decode_text_keeps_utf8_and_repairs_windows_1252_bytes():
    text, repaired = common.decode_text(b"\xef\xbb\xbfcaf\xc3\xa9\nI\x92m \x93here\x94, caf\xc3\xa9\nok")
    assert text == "café\nI\u2019m \u201chere\u201d, café\nok" and repaired == 1
