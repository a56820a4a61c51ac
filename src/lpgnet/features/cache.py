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
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from ..files import atomic_path

_BLOCK = 1 << 20


def default_cache_dir() -> Path:
    return Path(os.environ.get("LPGNET_CACHE") or Path.home() / ".cache" / "lpgnet")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(_BLOCK):
            h.update(chunk)
    return h.hexdigest()


_FOLDER_HASHES: dict[tuple, str] = {}


def folder_sha256(folder: str | Path, skip: tuple[str, ...] = ("README.md", ".gitattributes")) -> str:
    """Hash of every file under ``folder`` (names and bytes), e.g. a model's weights.

    Remembered for the process while no file's size or modification time changes, so
    a multi-seed experiment hashes a large checkpoint once, not once per seed.
    """
    folder = Path(folder)
    files = sorted(q for q in folder.rglob("*") if q.is_file() and q.name not in skip)
    signature = (str(folder.resolve()), *((str(q), q.stat().st_size, q.stat().st_mtime_ns) for q in files))
    if signature not in _FOLDER_HASHES:
        h = hashlib.sha256()
        for p in files:
            h.update(str(p.relative_to(folder)).encode())
            h.update(file_sha256(p).encode())
        _FOLDER_HASHES[signature] = h.hexdigest()
    return _FOLDER_HASHES[signature]


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
