"""Bad input records, collected: fatal at the first under ``strict``, otherwise skipped,
counted by kind and kept as a few examples -- how ``lpgnet prepare`` and ``lpgnet
extract`` treat a broken line or clip in an otherwise good corpus."""

from __future__ import annotations

from collections import Counter

from ..errors import DataError


class Problems:
    """Problems met while reading input; every message already names file, line and field."""

    def __init__(self, strict: bool, examples: int = 20, strict_hint: str = "") -> None:
        self.strict = strict
        self.limit = examples  # examples kept per kind, and in ``first``
        self.strict_hint = strict_hint  # appended to the error under strict
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}  # kind -> its first messages
        self.first: list[str] = []  # the first messages of any kind, in the order met

    def add(self, kind: str, message: str) -> None:
        if self.strict:
            raise DataError(message + self.strict_hint)
        self.counts[kind] += 1
        kept = self.examples.setdefault(kind, [])
        if len(kept) < self.limit:
            kept.append(message)
        if len(self.first) < self.limit:
            self.first.append(message)
