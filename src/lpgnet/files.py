"""Files: atomic writes (a crash or a full disk never leaves a half-written file behind) and
content hashes (what a cache or a run records about the data it saw)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import RunDirError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once, at import: os.umask can only be read by setting it


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; it replaces ``target`` only on success."""
    target = Path(target)
    if target.is_dir():
        raise RunDirError(f"{target}: is a directory; expected a file path to write")
    if target.parent.exists() and not target.parent.is_dir():
        raise RunDirError(f"{target.parent}: is a file; expected a directory to write {target.name} into")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp (and some writers, e.g. safetensors) make 0600: give the usual permissions
        os.chmod(tmp, 0o666 & ~_UMASK)
        with open(tmp, "rb+") as f:  # on disk before the rename, so a crash cannot leave an empty file
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(target: str | Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_figure(fig: Any, path: str | Path) -> None:
    """A matplotlib figure as PNG, atomically; the figure is closed."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def write_json(target: str | Path, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2) + "\n")


_BLOCK = 1 << 20


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
