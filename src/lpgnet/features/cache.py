"""An on-disk cache of extracted features, outside the repository.

One entry is one safetensors file named by a key: the SHA-256 of everything the features
depend on (encoder weights, pooling, fine-tuning settings and training dialogues, the data
file's bytes). A changed input gives a different key, so nothing is ever invalidated by
hand. Entries are written atomically (temporary file + rename): an interrupted
extraction leaves no half-written entry, only nothing.

Location: ``$LPGNET_CACHE`` or ``~/.cache/lpgnet``, unless a config names another.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from ..errors import ConfigError
from ..files import atomic_path


def default_cache_dir() -> Path:
    return Path(os.environ.get("LPGNET_CACHE") or Path.home() / ".cache" / "lpgnet")


def text_key(text: str) -> str:
    """The cache key of one text's features: its UTF-8 bytes, hashed (so equal texts share)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


def cache_key(spec: dict[str, Any]) -> str:
    """Stable key of a JSON-able description of what produced the features."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]


def load_entry(path: Path, ids: list[str]) -> np.ndarray | None:
    """Features for ``ids`` in that order, or None when the entry is absent or unusable."""
    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="np") as f:
            stored = json.loads((f.metadata() or {}).get("ids", "[]"))
            features = f.get_tensor("features")
    except (SafetensorError, OSError, ValueError, KeyError):
        return None
    if len(stored) != len(features):
        return None
    row = {u: i for i, u in enumerate(stored)}
    if any(u not in row for u in ids):
        return None
    return features[[row[u] for u in ids]]


def save_entry(path: Path, ids: list[str], features: np.ndarray, spec: dict[str, Any]) -> None:
    """Write one entry atomically, with the ids and the producing spec as metadata."""
    with atomic_path(path) as tmp:
        save_file(
            {"features": np.ascontiguousarray(features, dtype=np.float32)},
            str(tmp),
            metadata={"ids": json.dumps(ids), "spec": json.dumps(spec, sort_keys=True)},
        )


class ItemStore:
    """Features of single items (utterances) under one producing spec, stored in shards.

    ``lpgnet extract`` embeds thousands of utterances; an interruption must not cost the
    finished ones. Each call to :meth:`add` writes one new shard atomically
    (``<root>/items/<spec key>/shard-NNNNN.safetensors``, one tensor per item key), so a
    rerun loads every finished shard and computes only what is missing. Item keys are
    content hashes (of the text, or of the audio file's bytes), so an edited utterance is
    recomputed and an unchanged one is not, wherever it sits in the file. A shard that
    cannot be read is ignored (its items are recomputed). Shard names carry the host and
    process, so several processes (``lpgnet extract --shard``) can fill one store. Only
    an index (item key -> shard) is kept in memory; items are read from their shard when
    asked for, so a store of millions of utterances costs megabytes, not gigabytes.
    """

    def __init__(self, root: str | Path, spec: dict[str, Any]) -> None:
        self.dir = Path(root) / "items" / cache_key(spec)
        self.spec = spec
        self.where: dict[str, Path] = {}  # item key -> its shard: an index, not the vectors
        self.unreadable: list[Path] = []
        self._open: OrderedDict[Path, Any] = OrderedDict()  # a few shards open for reading
        for shard in sorted(self.dir.glob("shard-*.safetensors")):
            try:
                with safe_open(str(shard), framework="np") as f:
                    for key in f.keys():
                        self.where[key] = shard
            except (SafetensorError, OSError, ValueError):
                self.unreadable.append(shard)
        self._next = 1 + max((int(p.stem.split("-")[1]) for p in self.dir.glob("shard-*.safetensors")), default=0)

    def __contains__(self, key: str) -> bool:
        return key in self.where

    def __len__(self) -> int:
        return len(self.where)

    def __getitem__(self, key: str) -> np.ndarray:
        """The item, read from its shard (memory holds the index and a few open shards,
        however large the store)."""
        shard = self.where[key]
        if shard not in self._open:
            self._open[shard] = safe_open(str(shard), framework="np")
            if len(self._open) > OPEN_SHARDS:
                self._open.popitem(last=False)
        self._open.move_to_end(shard)
        return self._open[shard].get_tensor(key)

    def add(self, items: dict[str, np.ndarray]) -> None:
        """Store ``items`` as one new shard (atomically)."""
        if not items:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        spec_file = self.dir / "spec.json"
        if not spec_file.exists():
            with atomic_path(spec_file) as tmp:
                tmp.write_text(json.dumps(self.spec, sort_keys=True, indent=1), encoding="utf-8")
        # a name no other process picks: extraction shards may fill one cache at once
        shard = self.dir / f"shard-{self._next:05d}-{socket.gethostname()}-{os.getpid()}.safetensors"
        with atomic_path(shard) as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in items.items()}, str(tmp))
        self._next += 1
        for key in items:
            self.where[key] = shard


OPEN_SHARDS = 8


def local_model_folder(name: str, what: str, hint: str = "") -> Path:
    """The local Hugging Face checkpoint folder ``name`` names: a folder with a
    config.json, or a hub name already in the local Hugging Face cache. Weights are
    never downloaded at run time, so anything else is a ConfigError naming ``what``."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ConfigError(f"{path}: not a Hugging Face model folder (no config.json)")
        return path
    found = hub_cache_folder(name)
    if found is None:
        raise ConfigError(
            f"{what} {name!r}: {hint}not a local folder and not in the local Hugging Face cache "
            "(weights are never downloaded at run time: give a folder path)"
        )
    return found


def hub_cache_folder(name: str) -> Path | None:
    """``name``'s snapshot in the local Hugging Face cache, or None (no network)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # noqa: BLE001 -- any failure means "not cached here"
        return None
