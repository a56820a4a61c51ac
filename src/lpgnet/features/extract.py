"""``lpgnet extract``: utterance features for a conversation file, from its text and audio.

Input: a conversation file in the generic JSONL format (what ``lpgnet prepare`` writes:
``text`` and ``audio_path`` per utterance). Output: the same lines with a feature
vector per modality added (``text_emb``, ``audio_emb`` by default), ready for
``data.text_feature`` / ``data.audio_feature`` in a training config; with ``frames``,
also every utterance's token / frame sequence (float16, at most ``max_frames`` rows) in
``<out>.frames-<modality>.safetensors``, keyed by utterance id.

Text: a frozen BERT-style encoder (:mod:`lpgnet.features.text`; [CLS] or mean pooling).
Fine-tuned text features depend on the training split, so they are made at training time
instead (``data.text_encoder.finetune`` in the config reads the ``text`` field directly).
Audio: :mod:`lpgnet.features.audio` (emotion2vec, wav2vec2 / HuBERT by path, openSMILE
eGeMAPS), every file read as 16 kHz mono.

Work is cached per utterance (:class:`lpgnet.features.cache.ItemStore`, keyed by the
text or the audio file's bytes) and stored ``chunk`` utterances at a time, so an
interrupted extraction resumes without recomputing finished utterances, and a second
extraction of the same data is a cache read.

Bad input -- an utterance without text or audio path, a missing or undecodable audio
file -- is reported with the file, line and utterance id; by default that utterance is
left out of the output and counted in the summary, ``strict`` makes the first problem
fatal. The output is written atomically and never replaces an existing file unless
``overwrite``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save_file
from tqdm.auto import tqdm

from ..config import TextEncoderConfig
from ..data.jsonl import JsonlRows
from ..data.problems import Problems
from ..data.shards import dialogue_key, select_shard, shard_path
from ..errors import ConfigError, DataError
from ..files import atomic_path, file_sha256, write_json
from . import cache
from .audio import AudioEncoder, load_audio
from .text import encode, encoder_spec, load_encoder, resolve_encoder, token_states


@dataclass
class ExtractConfig:
    data: str  # conversation JSONL, or a folder holding utterances.jsonl
    out: str | None = None  # default: features.jsonl beside the input
    text: TextEncoderConfig | None = None
    audio: Any = None  # lpgnet.features.audio.AudioEncoderConfig
    text_field: str = "text_emb"
    audio_field: str = "audio_emb"
    frames: bool = False
    max_frames: int = 512
    chunk: int = 256  # utterances per stored shard: the most an interruption can lose
    strict: bool = False
    overwrite: bool = False
    cache_dir: str | None = None
    shard: tuple[int, int] | None = None  # (i, n): only fill the cache for these dialogues (see ``extract``)

    @classmethod
    def from_record(cls, record: dict[str, Any], source: str) -> ExtractConfig:
        """The extraction a shard marker recorded (``asdict`` of one, less ``shard``)."""
        from ..config.mapping import from_dict
        from .audio import AudioEncoderConfig

        fields = dict(record)
        if fields.get("text") is not None:
            fields["text"] = from_dict(TextEncoderConfig, fields["text"], source)
        if fields.get("audio") is not None:
            fields["audio"] = AudioEncoderConfig(**fields["audio"])
        return cls(**fields)

    def paths(self) -> tuple[Path, Path]:
        src = Path(self.data)
        if src.is_dir():
            src = src / "utterances.jsonl"
        out = Path(self.out) if self.out else src.with_name("features.jsonl")
        return src, out


class _Skipped(Problems):
    """Problems of extraction: each also marks its utterance (row) as left out of the output."""

    def __init__(self, strict: bool) -> None:
        super().__init__(strict)
        self.bad: set[int] = set()

    def skip(self, row: int, kind: str, message: str) -> None:
        self.add(kind, message)
        self.bad.add(row)


class _Lazy:
    """Row -> vector, read from the feature store when asked for (not all held in memory)."""

    def __init__(self, keys: dict[int, str], store: cache.ItemStore) -> None:
        self.keys, self.store = keys, store

    def __getitem__(self, row: int) -> np.ndarray:
        return self.store[self.keys[row]]

    def __contains__(self, row: int) -> bool:
        return row in self.keys


def _fill(
    store: cache.ItemStore,
    items: Collection[tuple[str, Any]],
    compute: Callable[[dict[str, Any]], dict[str, np.ndarray]],
    chunk: int,
    desc: str,
) -> None:
    """Compute the (key, input) items whose key is not in ``store`` yet, ``chunk`` distinct
    keys at a time, and store each chunk as it is done: an interruption loses at most one
    chunk, and no more than one chunk's inputs (texts, clips) is ever in memory."""
    pending: dict[str, Any] = {}
    for k, x in tqdm(items, desc=desc, file=sys.stderr, disable=None):
        if k not in store and k not in pending:
            pending[k] = x
            if len(pending) >= chunk:
                store.add(compute(pending))
                pending = {}
    if pending:
        store.add(compute(pending))


def shard_marker(out: Path, i: int, n: int) -> Path:
    """Where shard i of n records that it is done, and the extraction it belongs to."""
    return shard_path(out, i, n).with_suffix(".extract.json")


def extract(cfg: ExtractConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the extraction; return (and write beside the output) its summary.

    With ``shard`` (i, n) only the dialogues at positions i mod n (order of first
    appearance) are embedded, into the shared feature cache, and a marker
    (``shard_marker``) records the shard as done; no output is written. Once every
    shard is done, the same extraction without a shard (``lpgnet merge``) finds every
    utterance cached and writes exactly the one-process output."""
    if cfg.text is None and cfg.audio is None:
        raise ConfigError("extract: give a text encoder, an audio encoder, or both")
    if cfg.max_frames < 1 or cfg.chunk < 1:
        raise ConfigError("extract: max_frames and chunk must be positive")
    src, out = cfg.paths()
    frame_files = {m: out.with_name(f"{out.stem}.frames-{m}.safetensors") for m in ("text", "audio")}
    if cfg.shard is not None:
        marker = shard_marker(out, *cfg.shard)
        if marker.exists() and not cfg.overwrite:
            log(f"shard {cfg.shard[0]}/{cfg.shard[1]}: already done ({marker}); --overwrite to redo it")
            return json.loads(marker.read_text(encoding="utf-8"))
    elif not cfg.overwrite:
        for p in [out] + ([frame_files[m] for m in ("text", "audio")] if cfg.frames else []):
            if p.exists():
                raise DataError(f"{p}: exists; pass --overwrite to replace it (or choose --out)")
    rows = JsonlRows(src)  # read from disk row by row, not held in memory
    if cfg.shard is not None:
        mine = select_shard(enumerate(rows), cfg.shard, group=lambda kr: dialogue_key(kr[1][1]))
        rows = rows.keep([k for k, _ in mine])
    ids = [str(o.get("utt_id") or f"{o.get('dialog_id')}/{o.get('turn')}") for _, o in rows]
    problems = _Skipped(cfg.strict)
    root = Path(cfg.cache_dir) if cfg.cache_dir else cache.default_cache_dir()
    features: dict[str, _Lazy] = {}
    frames: dict[str, dict[int, np.ndarray]] = {}

    if cfg.text is not None:
        features["text"], frames["text"] = _text(cfg, src, rows, ids, problems, root, log)
    if cfg.audio is not None:
        features["audio"], frames["audio"] = _audio(cfg, src, rows, ids, problems, root, log)

    keep = [i for i in range(len(rows)) if i not in problems.bad]
    if cfg.shard is not None:  # the cache holds this shard's features now: record it, write nothing else
        record = {k: v for k, v in asdict(cfg).items() if k not in ("shard", "overwrite")}
        done = {"shard": list(cfg.shard), "utterances": len(rows), "embedded": len(keep), "extract": record}
        write_json(shard_marker(out, *cfg.shard), done)
        log(f"shard {cfg.shard[0]}/{cfg.shard[1]}: {len(keep)} of {len(rows)} utterances embedded into the cache")
        return done
    if not keep:
        raise DataError(f"{src}: no utterance could be extracted ({dict(problems.counts)})")
    names = {"text": cfg.text_field, "audio": cfg.audio_field}
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8") as f:  # line by line: no copy of the corpus
        for i in keep:
            obj = dict(rows[i][1])
            for m, vecs in features.items():
                obj[names[m]] = [float(f"{v:.7g}") for v in vecs[i].tolist()]
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
    written = {"features": str(out)}
    if cfg.frames:
        for m, seqs in frames.items():
            with atomic_path(frame_files[m]) as tmp:
                save_file(
                    {ids[i]: np.ascontiguousarray(seqs[i], dtype=np.float16) for i in keep},
                    str(tmp),
                    metadata={"modality": m, "max_frames": str(cfg.max_frames)},
                )
            written[f"frames_{m}"] = str(frame_files[m])
    # Which encoder made each field, so a model trained on them can embed new raw inputs the same way.
    encoders = {}
    if cfg.text is not None:
        encoders[cfg.text_field] = {"modality": "text", **asdict(cfg.text)}
    if cfg.audio is not None:
        encoders[cfg.audio_field] = {"modality": "audio", **asdict(cfg.audio)}
    summary = {
        "input": str(src),
        "utterances": len(rows),
        "written": len(keep),
        "skipped": dict(problems.counts),
        "encoders": encoders,
        "examples": problems.first,
        "fields": {names[m]: int(v[keep[0]].shape[-1]) for m, v in features.items()},
        "files": written,
    }
    write_json(out.with_name(f"{out.stem}.extract-report.json"), summary)
    log(
        f"{len(keep)} of {len(rows)} utterances written to {out} "
        + ", ".join(f"{k} ({d}-d)" for k, d in summary["fields"].items())
    )
    if problems.counts:
        log(
            "skipped: "
            + ", ".join(f"{n} x {k}" for k, n in problems.counts.items())
            + f" (details in {out.with_name(out.stem + '.extract-report.json')}; --strict makes them fatal)"
        )
    return summary


def _text(
    cfg: ExtractConfig,
    src: Path,
    rows: list,
    ids: list[str],
    problems: _Skipped,
    root: Path,
    log: Callable[[str], None],
) -> tuple[_Lazy, dict[int, np.ndarray]]:
    assert cfg.text is not None
    keys: dict[int, str] = {}
    for i, (lineno, obj) in enumerate(rows):
        text = obj.get("text")
        if not isinstance(text, str):
            problems.skip(
                i, "no text", f"{src}:{lineno}: utterance {ids[i]!r}: field 'text': expected a string, got {text!r:.40}"
            )
            continue
        keys[i] = cache.text_key(text)
    spec = encoder_spec(cfg.text)
    pooled = cache.ItemStore(root, {"kind": "text", **spec})
    loaded: list[Any] = []

    def model() -> tuple[Any, Any]:
        if not loaded:
            loaded.extend(load_encoder(resolve_encoder(cfg.text.encoder)))  # type: ignore[union-attr]
        return loaded[0], loaded[1]

    def embed(part: dict[str, int]) -> dict[str, np.ndarray]:
        texts = [rows[i][1]["text"] for i in part.values()]  # read back from the file only now
        return dict(zip(part, encode(*model(), texts, cfg.text, desc="text batch")))  # type: ignore[arg-type]

    _fill(pooled, [(k, i) for i, k in keys.items()], embed, cfg.chunk, "text")
    distinct = len(set(keys.values()))
    frames = {}
    if cfg.frames:
        order = list(keys)
        seqs = token_states([rows[i][1]["text"] for i in order], cfg.text, cfg.max_frames, root, cfg.chunk)
        frames = dict(zip(order, seqs))
    log(f"text: {distinct} distinct texts, encoder {cfg.text.encoder} ({cfg.text.pooling} pooling)")
    return _Lazy(keys, pooled), frames


def _audio(
    cfg: ExtractConfig,
    src: Path,
    rows: list,
    ids: list[str],
    problems: _Skipped,
    root: Path,
    log: Callable[[str], None],
) -> tuple[_Lazy, dict[int, np.ndarray]]:
    keys: dict[int, str] = {}
    files: dict[str, Path] = {}
    for i, (lineno, obj) in enumerate(rows):
        where = f"{src}:{lineno}: utterance {ids[i]!r}"
        value = obj.get("audio_path")
        if not isinstance(value, str) or not value:
            problems.skip(i, "no audio_path", f"{where}: field 'audio_path': expected a file path, got {value!r:.40}")
            continue
        path = Path(value) if Path(value).is_absolute() else src.parent / value
        try:
            keys[i] = file_sha256(path)[:40]
        except OSError as exc:
            problems.skip(i, "audio file not found", f"{where}: audio file {path}: {exc.strerror or exc}")
            continue
        files.setdefault(keys[i], path)
    encoder = AudioEncoder(cfg.audio)
    sample_rate = getattr(cfg.audio, "sample_rate", 16000)
    pooled = cache.ItemStore(root, {"kind": "audio", **encoder.spec()})
    framer = None
    if cfg.frames:
        framer = AudioEncoder(type(cfg.audio)(**{**cfg.audio.__dict__, "frames": True, "max_frames": cfg.max_frames}))
    seqs = cache.ItemStore(root, {"kind": "audio-frames", **framer.spec()}) if framer else None
    undecodable: dict[str, str] = {}

    def waves(part: list[str]) -> tuple[list[str], list[np.ndarray]]:
        ok, out = [], []
        for k in part:
            try:
                out.append(load_audio(files[k], sample_rate))
                ok.append(k)
            except DataError as exc:
                undecodable[k] = str(exc)
        return ok, out

    def encode_each(enc: Any, ok: list[str], w: list[np.ndarray]) -> tuple[list[str], list[np.ndarray]]:
        """The batch, or -- when the encoder refuses one clip -- each clip alone, so the
        bad file is named and the others are kept."""
        try:
            return ok, enc.encode(w)
        except DataError:
            keys, vecs = [], []
            for k, x in zip(ok, w):
                try:
                    vecs.append(enc.encode([x])[0])
                    keys.append(k)
                except DataError as exc:
                    undecodable[k] = f"{files[k]}: {exc}"
            return keys, vecs

    def compute(enc: Any) -> Callable[[dict[str, Path]], dict[str, np.ndarray]]:
        def run(part: dict[str, Path]) -> dict[str, np.ndarray]:
            ok, vecs = encode_each(enc, *waves(list(part)))
            dtype = np.float16 if enc is framer else np.float32
            return {k: np.asarray(v, dtype) for k, v in zip(ok, vecs)}

        return run

    _fill(pooled, files.items(), compute(encoder), cfg.chunk, "audio")
    if seqs is not None:
        decodable = [(k, p) for k, p in files.items() if k not in undecodable]
        _fill(seqs, decodable, compute(framer), cfg.chunk, "audio frames")
    for i, k in list(keys.items()):
        if k in undecodable or k not in pooled:
            problems.skip(
                i,
                "undecodable audio",
                f"{src}:{rows[i][0]}: utterance {ids[i]!r}: " + undecodable.get(k, f"{files[k]}: could not be encoded"),
            )
            del keys[i]
    log(f"audio: {len(files)} distinct files, encoder {cfg.audio.encoder}")
    return _Lazy(keys, pooled), ({i: seqs[k] for i, k in keys.items()} if seqs else {})
