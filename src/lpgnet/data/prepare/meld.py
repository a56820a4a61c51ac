"""MELD.Raw -> the conversation format (``lpgnet prepare meld``)."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from .common import (
    CorpusProblems,
    Prepared,
    check_out,
    check_root,
    finish,
    int_or_none,
    read_csv_rows,
    renumber,
)

MELD_SPLITS = {"train": "train", "dev": "valid", "test": "test"}  # MELD's name -> the splits.json key
MELD_EMOTIONS = {"neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear"}
MELD_SENTIMENTS = {"positive", "negative", "neutral"}
MELD_COLUMNS = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")
# Where MELD's archives put the clips, per split, searched in this order under the root and
# under <root>/<split>/ (train.tar.gz unpacks to train/train_splits/, and people often move
# the inner folder up). The first folder holding dia{D}_utt{U}.mp4 wins.
MELD_CLIP_FOLDERS = {
    "train": ("train_splits", "train_splits_complete"),
    "dev": ("dev_splits_complete", "dev_splits"),
    "test": ("output_repeated_splits_test", "test_splits_complete", "test_splits"),
}


def find_ffmpeg() -> str | None:
    """ffmpeg decodes MELD's mp4 clips at extraction time; without it only text is usable."""
    return shutil.which("ffmpeg")


def meld_clip_folders(root: Path, split: str) -> list[Path]:
    """The existing folders that may hold the clips of one MELD split, in search order."""
    names = MELD_CLIP_FOLDERS[split]
    candidates = [root / n for n in names] + [root / split / n for n in names] + [root / split]
    return [c for c in candidates if c.is_dir()]


def _meld_time(value: str | None) -> float | None:
    """'00:16:16,059' -> 976.059 seconds; None when absent or not in that form."""
    m = re.fullmatch(r"(\d+):(\d\d):(\d\d)[,.](\d+)", (value or "").strip())
    if not m:
        return None
    h, mi, s, frac = m.groups()
    return round(int(h) * 3600 + int(mi) * 60 + int(s) + int(frac) / 10 ** len(frac), 3)


def prepare_meld(
    root: str | Path, out: str | Path, strict: bool = False, overwrite: bool = False, text_only: bool = False
) -> Prepared:
    """MELD.Raw -> utterances.jsonl + splits.json (protocol ``meld``: train / valid (= dev) / test).

    Reads ``{train,dev,test}_sent_emo.csv`` (UTF-8 with stray Windows-1252 bytes, see
    ``decode_text``). Dialogue ids restart in every split, so ``dialog_id`` is
    ``{split}_dia{D}``; ``turn`` follows Utterance_ID. Clips ``dia{D}_utt{U}.mp4`` are
    looked up in ``MELD_CLIP_FOLDERS`` (existence only). Without ffmpeg on PATH, or with
    ``text_only``, no clip is looked up and no ``audio_path`` is written.
    """
    problems, notes = CorpusProblems(strict), Counter[str]()
    root = check_root(root, "MELD.Raw")
    out = check_out(out, overwrite, root)
    ffmpeg = find_ffmpeg()
    with_audio = not text_only and ffmpeg is not None
    extra = (
        []
        if with_audio
        else [
            "text-only: no audio_path written ("
            + ("--text-only given" if text_only else "ffmpeg not found on PATH; it decodes the mp4 clips")
            + ")"
        ]
    )
    rows, protocols = [], {"meld": {}}
    for split, key in MELD_SPLITS.items():
        path = root / f"{split}_sent_emo.csv"
        folders = meld_clip_folders(root, split) if with_audio else []
        if with_audio and not folders:
            extra.append(
                f"{split}: no clip folder found (looked for {', '.join(MELD_CLIP_FOLDERS[split])} under {root} and {root / split})"
            )
        seen: dict[tuple[int, int], int] = {}
        split_rows = []
        for lineno, row in read_csv_rows(path, MELD_COLUMNS, problems, notes):
            where = f"{path}:{lineno}"
            dia, utt = int_or_none(row["Dialogue_ID"]), int_or_none(row["Utterance_ID"])
            if dia is None or utt is None or dia < 0 or utt < 0:
                problems.add_at(
                    "malformed_line",
                    where,
                    None,
                    f"Dialogue_ID {row['Dialogue_ID']!r} / Utterance_ID {row['Utterance_ID']!r}: expected whole numbers",
                )
                continue
            utt_id = f"{split}_dia{dia}_utt{utt}"
            emotion, sentiment = row["Emotion"].strip().lower(), row["Sentiment"].strip().lower()
            if emotion not in MELD_EMOTIONS or sentiment not in MELD_SENTIMENTS:
                problems.add_at(
                    "malformed_line",
                    where,
                    utt_id,
                    f"Emotion {row['Emotion']!r} / Sentiment {row['Sentiment']!r}: "
                    f"expected one of {' '.join(sorted(MELD_EMOTIONS))} / {' '.join(sorted(MELD_SENTIMENTS))}",
                )
                continue
            if (dia, utt) in seen:
                problems.add_at(
                    "duplicate", where, utt_id, f"same Dialogue_ID and Utterance_ID as line {seen[dia, utt]}"
                )
                continue
            seen[dia, utt] = lineno
            r: dict[str, Any] = {
                "utt_id": utt_id,
                "dialog_id": f"{split}_dia{dia}",
                "turn": utt,
                "split": split,
                "speaker": row["Speaker"].strip(),
                "text": row["Utterance"].strip(),
                "label": emotion,
                "sentiment": sentiment,
                "season": int_or_none(row.get("Season")),
                "episode": int_or_none(row.get("Episode")),
                "start": _meld_time(row.get("StartTime")),
                "end": _meld_time(row.get("EndTime")),
            }
            if with_audio:
                clip = next(
                    (f / f"dia{dia}_utt{utt}.mp4" for f in folders if (f / f"dia{dia}_utt{utt}.mp4").is_file()), None
                )
                if clip is None:
                    looked = ", ".join(str(f) for f in folders) or f"no clip folder exists for {split}"
                    problems.add_at(
                        "missing_audio", where, utt_id, f"no clip dia{dia}_utt{utt}.mp4 (looked in: {looked})"
                    )
                    continue
                r["audio_path"] = str(clip)
            split_rows.append(r)
        split_rows = renumber(split_rows, key=lambda r: r["turn"], dialog_key=lambda d: int(d.rsplit("dia", 1)[1]))
        protocols["meld"][key] = sorted({r["dialog_id"] for r in split_rows}, key=lambda d: int(d.rsplit("dia", 1)[1]))
        rows += split_rows
    return finish("meld", root, out, rows, protocols, problems, notes, overwrite, extra)
