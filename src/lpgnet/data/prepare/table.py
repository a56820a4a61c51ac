"""Any CSV table (dialog_id, turn, text, audio_path, ...) -> the conversation format
(``lpgnet prepare table``)."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from ...errors import DataError
from .common import (
    CorpusProblems,
    Prepared,
    check_out,
    finish,
    int_or_none,
    read_csv_rows,
)

TABLE_COLUMNS = ("dialog_id", "turn", "text", "audio_path")
TABLE_SPLITS = ("train", "valid", "test")


def prepare_table(csv_path: str | Path, out: str | Path, strict: bool = False, overwrite: bool = False) -> Prepared:
    """A CSV with ``dialog_id, turn, text, audio_path`` (+ optional ``label``, ``speaker``,
    ``split``) -> utterances.jsonl (+ splits.json, protocol ``given``, when ``split`` exists).

    A relative ``audio_path`` is relative to the CSV's folder (written absolute), so a table
    can travel with its recordings. Turns are kept as given (the reader orders by them);
    an empty ``label`` is an unlabelled context utterance. A ``split`` value other than
    train / valid / test, or a dialogue split across two values, is always fatal: it is a
    mistake in the protocol, not in one utterance.
    """
    problems, notes = CorpusProblems(strict), Counter[str]()
    path = Path(os.path.abspath(csv_path))
    out = check_out(out, overwrite, path)
    table = read_csv_rows(path, TABLE_COLUMNS, problems, notes)
    has = set(table[0][1]) if table else set()
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, int], int] = {}
    split_of: dict[str, tuple[str, int]] = {}
    for lineno, row in table:
        where = f"{path}:{lineno}"
        dialog_id, turn_text = row["dialog_id"].strip(), row["turn"].strip()
        turn = int_or_none(turn_text)
        utt_id = f"{dialog_id}_{turn_text}" if dialog_id else None
        if not dialog_id or turn is None or turn < 0:
            problems.add_at(
                "malformed_line",
                where,
                utt_id,
                f"dialog_id {dialog_id!r} / turn {turn_text!r}: expected a name and a whole number >= 0",
            )
            continue
        if "split" in has:
            split = row["split"].strip()
            if split not in TABLE_SPLITS:
                raise DataError(f"{where}: {utt_id}: split {split!r}: expected one of {', '.join(TABLE_SPLITS)}")
            first = split_of.setdefault(dialog_id, (split, lineno))
            if first[0] != split:
                raise DataError(
                    f"{where}: {utt_id}: split {split!r}, but line {first[1]} puts dialogue {dialog_id!r} in {first[0]!r}"
                )
        if (dialog_id, turn) in seen:
            problems.add_at(
                "duplicate",
                where,
                utt_id,
                f"turn {turn} of dialogue {dialog_id!r} already on line {seen[dialog_id, turn]}",
            )
            continue
        audio = row["audio_path"].strip()
        if not audio:
            problems.add_at("malformed_line", where, utt_id, "empty audio_path")
            continue
        audio_path = Path(os.path.abspath(path.parent / Path(audio).expanduser()))
        if not audio_path.is_file():
            problems.add_at("missing_audio", where, utt_id, f"audio_path {audio!r}: no file at {audio_path}")
            continue
        seen[dialog_id, turn] = lineno
        r: dict[str, Any] = {"utt_id": utt_id, "dialog_id": dialog_id, "turn": turn, "text": row["text"].strip()}
        if "label" in has:
            r["label"] = row["label"].strip() or None
        if "speaker" in has and row["speaker"].strip():
            r["speaker"] = row["speaker"].strip()
        if "split" in has:
            r["split"] = row["split"].strip()
        r["audio_path"] = str(audio_path)
        rows.append(r)
    order = {
        d: i for i, d in enumerate(dict.fromkeys(r["dialog_id"] for r in rows))
    }  # dialogues in order of appearance
    rows.sort(key=lambda r: (order[r["dialog_id"]], r["turn"]))
    protocols = None
    if "split" in has:
        given = {s: [d for d in order if split_of[d][0] == s] for s in TABLE_SPLITS}
        protocols = {"given": {s: ids for s, ids in given.items() if ids or s != "valid"}}
    return finish("table", path, out, rows, protocols, problems, notes, overwrite)
