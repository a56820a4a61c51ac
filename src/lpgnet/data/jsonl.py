"""The generic conversation format: JSON Lines, one utterance per line.

Each line is an object with ``dialog_id`` (string), ``turn`` (integer position in the
dialogue), ``text``, a label field (``data.label_field``; null = unlabelled), an optional
``speaker`` and optional precomputed feature fields (lists of numbers) named by
``data.text_feature`` / ``data.audio_feature``. Any ERC corpus in this shape works.

Splits come from a splits JSON (``data.splits``) holding protocols, each a mapping
``{"train": [dialog ids], "valid": [...], "test": [...]}`` (``valid`` optional: carved
from train when absent), selected with ``data.protocol``.

Every problem is reported with the file, the line number and the field.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..files import file_sha256
from .conversation import IGNORE, MAX_FEATURE_ABS, DataBundle, Dialogue, unusable_value
from .shards import dialogue_key, select_shard


def read_text(path: Path, what: str = "conversation file") -> str:
    """A UTF-8 text file (a byte-order mark is skipped); a missing, unreadable or
    non-UTF-8 file is a one-line DataError naming the line."""
    if not path.exists():
        raise DataError(f"{path}: {what} not found")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(
            f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {column}); save the file as UTF-8"
        ) from None


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line."""
    rows = []
    for lineno, line in enumerate(read_text(path).splitlines(), 1):
        obj = _parse_text(path, lineno, line)
        if obj is not None:
            rows.append((lineno, obj))
    if not rows:
        raise DataError(f"{path}: no utterances (empty file)")
    return rows


def _parse_line(path: Path, lineno: int, raw: bytes) -> dict[str, Any] | None:
    """One JSONL line as an object (None when blank), every problem naming the line."""
    if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a byte-order mark
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}:{lineno}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); save the file as UTF-8"
        ) from None
    return _parse_text(path, lineno, line)


def _parse_text(path: Path, lineno: int, line: str) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{lineno}: malformed JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}:{lineno}: expected a JSON object per line, got {type(obj).__name__}")
    return obj


def _scan(path: Path) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(byte offset, line number, object) of each non-blank line, one at a time."""
    if not path.exists():
        raise DataError(f"{path}: conversation file not found")
    empty = True
    with path.open("rb") as f:
        at = 0
        for lineno, raw in enumerate(f, 1):
            obj = _parse_line(path, lineno, raw)
            if obj is not None:
                empty = False
                yield at, lineno, obj
            at += len(raw)
    if empty:
        raise DataError(f"{path}: no utterances (empty file)")


class JsonlRows(Sequence):
    """The (line number, object) rows of a JSONL file, read from disk when asked for: the
    file is indexed once (byte offset and line number of each non-blank line, in arrays)
    and every access seeks and parses, so a corpus of any size costs 16 bytes per line
    in memory. ``keep(indices)`` is the same rows, fewer of them (a shard)."""

    def __init__(self, path: Path, offsets: array | None = None, linenos: array | None = None) -> None:
        self.path = path
        if offsets is None or linenos is None:
            offsets, linenos = array("q"), array("q")
            for at, lineno, _ in _scan(path):
                offsets.append(at)
                linenos.append(lineno)
        self.offsets, self.linenos = offsets, linenos
        self._file: Any = None

    @classmethod
    def by_dialogue(cls, path: Path) -> dict[str, JsonlRows]:
        """Each dialogue's rows, dialogues in order of first appearance, from one pass
        over the file: a corpus of any size can then be read one dialogue at a time."""
        index: dict[str, tuple[array, array]] = {}
        for at, lineno, obj in _scan(path):
            offsets, linenos = index.setdefault(dialogue_key(obj), (array("q"), array("q")))
            offsets.append(at)
            linenos.append(lineno)
        return {d: cls(path, offsets, linenos) for d, (offsets, linenos) in index.items()}

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, i: int) -> tuple[int, dict[str, Any]]:  # type: ignore[override]
        if self._file is None:
            self._file = self.path.open("rb")
        self._file.seek(self.offsets[i])
        return self.linenos[i], _parse_line(self.path, self.linenos[i], self._file.readline())  # type: ignore[return-value]

    def close(self) -> None:
        """Close the file the rows are read from (it reopens when a row is asked for again)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def keep(self, indices: list[int]) -> JsonlRows:
        return JsonlRows(
            self.path, array("q", (self.offsets[i] for i in indices)), array("q", (self.linenos[i] for i in indices))
        )


def iter_dialogues(
    path: Path, shard: tuple[int, int] = (0, 1)
) -> Iterator[tuple[str, list[tuple[int, dict[str, Any]]]]]:
    """(dialog_id, [(line, utterance), ...]) of a JSONL file, one dialogue in memory at a
    time, in order of first appearance; ``shard`` (i, n) keeps the dialogues whose
    position in that order is i modulo n (``lpgnet predict --shard``)."""
    for dialog_id, rows in select_shard(JsonlRows.by_dialogue(path).items(), shard, group=lambda item: item[0]):
        utterances = list(rows)
        rows.close()  # one open file at a time, however many dialogues
        yield dialog_id, utterances


def read_conversations(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line, utterance) from a JSONL file or a CSV with a header (text, audio_path,
    dialog_id, turn, speaker columns; feature columns as JSON lists)."""
    if path.suffix.lower() != ".csv":
        return read_jsonl(path)
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    if not reader.fieldnames:
        raise DataError(f"{path}: empty CSV (no header)")
    rows = []
    try:
        for rec in reader:
            lineno = reader.line_num
            u: dict[str, Any] = {}
            for k, v in rec.items():
                if k is None or v is None or v == "":
                    continue
                if k == "turn":
                    try:
                        u[k] = int(v)
                    except ValueError:
                        raise DataError(f"{path}:{lineno}: column 'turn': expected an integer, got {v!r}") from None
                elif v.lstrip().startswith("["):
                    try:
                        u[k] = json.loads(v)
                    except json.JSONDecodeError:
                        raise DataError(f"{path}:{lineno}: column {k!r}: not a JSON list of numbers") from None
                else:
                    u[k] = v
            rows.append((lineno, u))
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None
    if not rows:
        raise DataError(f"{path}: no utterances")
    return rows


def _feature(path: Path, lineno: int, obj: dict, field: str) -> list[float] | None:
    """An utterance's feature vector, or None when it has none (absent or null: the
    modality is missing there, as in prediction). NaN values mark a missing vector too;
    infinite or huge values are refused."""
    value = obj.get(field)
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise DataError(
            f"{path}:{lineno}: field '{field}': expected a non-empty list of numbers (or null: missing), "
            f"got {value!r:.60}"
        )
    huge = unusable_value(value)
    if huge is not None:
        raise DataError(
            f"{path}:{lineno}: field '{field}': value {huge!r} is not a usable feature (expected finite numbers "
            f"of magnitude at most {MAX_FEATURE_ABS:g}; null or NaN marks a missing vector)"
        )
    return value


def _feature_size(path: Path, rows: list[tuple[int, dict[str, Any]]], field: str) -> tuple[int, int]:
    """(vector length, line it was read from): the first utterance that has the field
    sets it, so utterances without it can be filled as missing."""
    for lineno, obj in rows:
        if obj.get(field) is not None:
            value = _feature(path, lineno, obj, field)
            assert value is not None
            return len(value), lineno
    raise DataError(f"{path}: field '{field}': no utterance has it (expected a list of numbers per utterance)")


def read_splits(path: Path, protocol: str) -> dict[str, list[str]]:
    if not path.exists():
        raise DataError(f"{path}: splits file not found")
    try:
        protocols = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: malformed JSON ({exc.msg})") from None
    if protocol not in protocols:
        raise DataError(f"{path}: no protocol {protocol!r} (has: {', '.join(protocols)})")
    splits = protocols[protocol]
    unknown = set(splits) - {"train", "valid", "test"}
    if unknown or "train" not in splits or "test" not in splits:
        raise DataError(f"{path}: protocol {protocol!r}: expected lists 'train', 'test' and optionally 'valid'")
    return splits


LOSO_PREFIX = "loso-"  # protocol "loso-3": test on group 3 (e.g. session 3), train on the rest


def leave_one_group_out(path: Path, rows: list[tuple[int, dict]], group_field: str, held_out: str) -> dict[str, str]:
    """Dialogue -> split for a leave-one-group-out fold (IEMOCAP: leave one session out).

    Every dialogue whose ``group_field`` equals ``held_out`` (compared as text) is test;
    all others are train (validation is then carved from train by dialogue).
    """
    group_of: dict[str, str] = {}
    for lineno, obj in rows:
        if not isinstance(obj.get("dialog_id"), str):
            raise DataError(f"{path}:{lineno}: field 'dialog_id': expected str, got {obj.get('dialog_id')!r}")
        if group_field not in obj or obj[group_field] is None:
            raise DataError(f"{path}:{lineno}: field '{group_field}': needed by the leave-one-out protocol, missing")
        value, dialog_id = str(obj[group_field]), str(obj.get("dialog_id"))
        if group_of.setdefault(dialog_id, value) != value:
            raise DataError(
                f"{path}:{lineno}: field '{group_field}': dialogue {dialog_id!r} has both {group_of[dialog_id]!r} and {value!r}"
            )
    groups = sorted(set(group_of.values()))
    if held_out not in groups:
        raise DataError(
            f"{path}: protocol {LOSO_PREFIX}{held_out}: no dialogue has {group_field} {held_out!r} (found: {', '.join(groups)})"
        )
    return {d: ("test" if g == held_out else "train") for d, g in group_of.items()}


def load_jsonl_bundle(
    path: str | Path,
    splits_path: str | Path | None,
    protocol: str,
    label_field: str,
    labels: list[str] | None,
    features: dict[str, str | None],
    unlabelled: str = "context",
    read_text: bool = False,
    group_field: str = "session",
) -> DataBundle:
    """Read conversations and a split protocol into a DataBundle (see module doc).

    ``read_text`` keeps each utterance's ``text`` (a string, checked) for a text encoder.
    """
    path = Path(path)
    rows = read_jsonl(path)
    if protocol.startswith(LOSO_PREFIX):
        split_of = leave_one_group_out(path, rows, group_field, protocol[len(LOSO_PREFIX) :])
    else:
        if splits_path is None:
            raise DataError(f"protocol {protocol!r} needs a splits file (data.splits)")
        split_of = {}
        for split, ids in read_splits(Path(splits_path), protocol).items():
            for dialog_id in ids:
                if dialog_id in split_of:
                    raise DataError(
                        f"{splits_path}: dialogue {dialog_id!r} is in both {split_of[dialog_id]} and {split}"
                    )
                split_of[dialog_id] = split

    raw_labels = [obj.get(label_field) for _, obj in rows]
    if labels is None:  # the label set is what occurs, sorted: give it explicitly to fix the order
        labels = sorted({v for v in raw_labels if v is not None}, key=str)
    index = {name: i for i, name in enumerate(labels)}
    dialogues: dict[str, list[tuple[int, int, dict]]] = {}
    for lineno, obj in rows:
        for field, kind in (("dialog_id", str), ("turn", int)):
            if not isinstance(obj.get(field), kind) or isinstance(obj.get(field), bool):
                raise DataError(f"{path}:{lineno}: field '{field}': expected {kind.__name__}, got {obj.get(field)!r}")
        if read_text and not isinstance(obj.get("text"), str):
            raise DataError(
                f"{path}:{lineno}: field 'text': expected a string (the transcript), got {obj.get('text')!r:.60}"
            )
        label = obj.get(label_field)
        if label is not None and label not in index:
            raise DataError(f"{path}:{lineno}: field '{label_field}': {label!r} is not in the label set {labels}")
        dialogues.setdefault(obj["dialog_id"], []).append((obj["turn"], lineno, obj))

    sizes = {m: _feature_size(path, rows, field) for m, field in features.items() if field is not None}
    splits: dict[str, list[Dialogue]] = {"train": [], "valid": [], "test": []}
    for dialog_id, utts in dialogues.items():
        if dialog_id not in split_of:
            continue  # not part of this protocol
        utts.sort(key=lambda u: u[0])
        turns = [u[0] for u in utts]
        if len(set(turns)) != len(turns):
            dup = next(t for t in turns if turns.count(t) > 1)
            lines = [u[1] for u in utts if u[0] == dup]
            raise DataError(
                f"{path}: dialogue {dialog_id!r}: turn {dup} appears twice (lines {lines[0]} and {lines[1]})"
            )
        if unlabelled == "drop":
            utts = [u for u in utts if u[2].get(label_field) is not None]
            if not utts:
                continue
        feats = {}
        for m, field in features.items():
            if field is None:
                feats[m] = np.zeros((len(utts), 0), np.float32)
                continue
            dim, first = sizes[m]
            rows = []
            for _, lineno, obj in utts:
                v = _feature(path, lineno, obj, field)
                if v is not None and len(v) != dim:
                    raise DataError(
                        f"{path}:{lineno}: field '{field}': {dim} values expected (as on line {first}), got {len(v)}"
                    )
                rows.append([float("nan")] * dim if v is None else v)  # NaN row: the modality is missing here
            feats[m] = np.asarray(rows, dtype=np.float32)
        splits[split_of[dialog_id]].append(
            Dialogue(
                dialog_id=dialog_id,
                text=feats["text"],
                audio=feats["audio"],
                labels=np.asarray(
                    [index[o[label_field]] if o.get(label_field) is not None else IGNORE for _, _, o in utts]
                ),
                speakers=[str(o.get("speaker", "")) for _, _, o in utts],
                utt_ids=[str(o.get("utt_id", f"{dialog_id}_{t}")) for t, _, o in utts],
                texts=[o["text"] for _, _, o in utts] if read_text else None,
                group=None if utts[0][2].get(group_field) is None else str(utts[0][2][group_field]),
            )
        )
    missing = sorted(set(split_of) - set(dialogues))
    if missing:
        raise DataError(f"{splits_path}: protocol {protocol!r} names dialogue {missing[0]!r}, absent from {path}")
    dims = {}
    for m in ("text", "audio"):
        sizes = {getattr(d, m).shape[1] for s in splits.values() for d in s}
        if len(sizes) > 1:
            raise DataError(
                f"{path}: field '{features[m]}': vectors of different lengths {sorted(sizes)} across dialogues"
            )
        dims[m] = sizes.pop() if sizes else 0
    if not splits["train"]:
        raise DataError(f"{splits_path or path}: protocol {protocol!r} leaves no training dialogue")
    h = hashlib.sha256(file_sha256(path).encode())
    if splits_path is not None and not protocol.startswith(LOSO_PREFIX):
        h.update(file_sha256(splits_path).encode())
    return DataBundle(
        {k: v for k, v in splits.items() if v}, list(labels), str(path), dims=dims, fingerprint=h.hexdigest()
    )
