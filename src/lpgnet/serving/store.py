"""Where the service keeps its incremental sessions (``/sessions``) between requests.

A session's state is small and plain: the utterances of its history (at most the run's
context window; each as the client sent it) and how many it has seen. Kept in memory it
lives in one process; ``lpgnet serve --workers N`` runs N processes, any of which may
answer a session's next request, so there the state lives in an SQLite file they share
(``SqliteStore``; WAL mode, one short transaction per read or write). Predicting happens
outside any transaction; a write checks the version it read, so two requests racing on
one session cannot both append (the second gets a conflict, 409). Several machines need
a store they all reach, or a load balancer that keeps a session on one machine (session
affinity by id): docs/SERVING.md.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MAX_SESSIONS = 1000  # open sessions (and live calls) kept by default; the oldest is dropped beyond it


class Conflict(Exception):
    """The session changed between this request's read and its write."""


class MemoryStore:
    """Sessions in this process (one worker); the oldest go beyond ``max_sessions``."""

    def __init__(self, max_sessions: int) -> None:
        self.max_sessions = max_sessions
        self._items: OrderedDict[str, tuple[int, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, sid: str, state: dict[str, Any]) -> None:
        with self._lock:
            self._items[sid] = (0, state)
            while len(self._items) > self.max_sessions:
                self._items.popitem(last=False)

    def load(self, sid: str) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            return self._items.get(sid)

    def save(self, sid: str, version: int, state: dict[str, Any]) -> None:
        with self._lock:
            if sid not in self._items or self._items[sid][0] != version:
                raise Conflict(sid)
            self._items[sid] = (version + 1, state)
            self._items.move_to_end(sid)

    def delete(self, sid: str) -> bool:
        with self._lock:
            return self._items.pop(sid, None) is not None


class SqliteStore:
    """Sessions in an SQLite file that several worker processes share (see the module doc)."""

    def __init__(self, path: str | Path, max_sessions: int) -> None:
        self.path = str(path)
        self.max_sessions = max_sessions
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, version INTEGER, state TEXT, updated REAL)"
            )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)  # autocommit: one statement each
        try:
            yield db
        finally:
            db.close()

    def create(self, sid: str, state: dict[str, Any]) -> None:
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("INSERT INTO sessions VALUES (?, 0, ?, ?)", (sid, json.dumps(state), time.time()))
                db.execute(  # the oldest go beyond max_sessions
                    "DELETE FROM sessions WHERE id IN "
                    "(SELECT id FROM sessions ORDER BY updated DESC LIMIT -1 OFFSET ?)",
                    (self.max_sessions,),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def load(self, sid: str) -> tuple[int, dict[str, Any]] | None:
        with self._connect() as db:
            row = db.execute("SELECT version, state FROM sessions WHERE id = ?", (sid,)).fetchone()
        return None if row is None else (int(row[0]), json.loads(row[1]))

    def save(self, sid: str, version: int, state: dict[str, Any]) -> None:
        with self._connect() as db:
            done = db.execute(
                "UPDATE sessions SET version = ?, state = ?, updated = ? WHERE id = ? AND version = ?",
                (version + 1, json.dumps(state), time.time(), sid, version),
            ).rowcount
        if done != 1:
            raise Conflict(sid)

    def delete(self, sid: str) -> bool:
        with self._connect() as db:
            return db.execute("DELETE FROM sessions WHERE id = ?", (sid,)).rowcount == 1
