"""Splitting a corpus by dialogue across independent jobs or torchrun processes, and
putting the pieces back together.

Shard ``i`` of ``n`` holds the dialogues whose position in the input (order of first
appearance) is i modulo n, and writes them to its own file, ``<out stem>.shard-<i>-of-<n><suffix>``,
atomically: a shard file exists only when that shard is complete, so a rerun of the
whole job array redoes only the shards that are missing. ``merge_round_robin`` then
interleaves the shards' dialogues back into the input's order -- exactly the output of
one process -- reading one line at a time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ConfigError, DataError, RunDirError
from ..files import atomic_path


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n), 0 <= i < n."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text}: expected i/n, e.g. 0/4 (shard i of n, counting from 0)") from None
    if not 0 <= i < n:
        raise ConfigError(f"--shard {text}: expected 0 <= i < n")
    return i, n


T = TypeVar("T")


def dialogue_key(utterance: dict[str, Any]) -> str:
    """The dialogue an utterance belongs to, as every sharded or grouped reader sees it:
    its ``dialog_id``, or one conversation for a file whose utterances carry none."""
    return str(utterance.get("dialog_id", "conversation"))


def select_shard(items: Iterable[T], shard: tuple[int, int], group: Callable[[T], str]) -> Iterator[T]:
    """The items of shard (i, n): those whose group (a dialogue) comes i-th modulo n in
    the order groups first appear -- the one rule every sharded command (predict,
    extract, a CSV or a JSONL) splits by, so their shards always line up."""
    i, n = shard
    position: dict[str, int] = {}
    for item in items:
        if position.setdefault(group(item), len(position)) % n == i:
            yield item


def shard_path(out: str | Path, i: int, n: int) -> Path:
    out = Path(out)
    return out.with_name(f"{out.stem}.shard-{i}-of-{n}{out.suffix}")


def _dialogues(path: Path):
    """(dialog_id, lines) groups of consecutive lines of a shard file."""
    group: list[str] = []
    current: object = None
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                key = json.loads(line).get("dialog_id")
            except (json.JSONDecodeError, AttributeError):
                raise DataError(f"{path}:{lineno}: not a line of a shard output (expected a JSON object)") from None
            if group and key != current:
                yield current, group
                group = []
            current = key
            group.append(line if line.endswith("\n") else line + "\n")
    if group:
        yield current, group


def merge_round_robin(out: str | Path, n: int, overwrite: bool = False) -> int:
    """Interleave the dialogues of the ``n`` shard files of ``out`` into ``out``; the number of lines."""
    out = Path(out)
    parts = [shard_path(out, i, n) for i in range(n)]
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise DataError(f"{out}: cannot merge, shard output missing: {', '.join(missing)} (run those shards first)")
    if out.exists() and not overwrite:
        raise RunDirError(f"{out}: exists; pass --overwrite to replace it")
    streams = [_dialogues(p) for p in parts]
    lines = 0
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8") as f:
        done = False
        while not done:
            for k, stream in enumerate(streams):  # shard k's j-th dialogue is the input's (j n + k)-th
                group = next(stream, None)
                if group is None:  # the input ended: later shards this round, earlier ones next round, are empty
                    if any(next(s, None) is not None for s in streams[k + 1 :] + streams[:k]):
                        raise DataError(f"{out}: the shard files do not come from one split of one input")
                    done = True
                    break
                f.writelines(group[1])
                lines += len(group[1])
    return lines
