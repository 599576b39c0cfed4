"""The SQLite state in ``state_dir``: checkpoints, policy windows, destination state, outbox.

One database file, WAL mode, one connection per thread. Everything a crash must not
split (new outbox rows, the offset that produced them, the policy windows they
changed) is written in one :meth:`State.transaction`.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from logwatch.errors import StateError

DB_NAME = "state.sqlite3"
#: one encoder for every value: ``json.dumps`` with options builds a new one per call;
#: stored values are plain trees (no cycles to look for)
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)
#: SQLite's page cache per connection (KiB): a catch-up rewrites thousands of policy rows
#: per transaction, spread over the whole kv table; the default 2 MiB makes it re-read pages
CACHE_KIB = 16 << 10
_UPSERT = ("INSERT INTO kv (ns, key, value) VALUES (?, ?, ?) "
           "ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value")
_DELETE = "DELETE FROM kv WHERE ns = ? AND key = ?"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    ns    TEXT NOT NULL,     -- 'checkpoint', 'policy', 'destination', ...
    key   TEXT NOT NULL,
    value TEXT NOT NULL,     -- JSON
    PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,   -- delivery order
    alert_id    TEXT NOT NULL,
    destination TEXT NOT NULL,
    alert       TEXT NOT NULL,                       -- Alert.to_json()
    status      TEXT NOT NULL DEFAULT 'pending',     -- pending | delivered | dead
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_try    REAL NOT NULL DEFAULT 0,
    error       TEXT,
    created     REAL NOT NULL,
    done        REAL,
    UNIQUE (alert_id, destination)
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (destination, status, seq);
"""


class State:
    """The state database; safe to share between threads (each gets its own connection)."""

    def __init__(self, state_dir: Path, *, readonly: bool = False) -> None:
        self.path = Path(state_dir) / DB_NAME
        self.readonly = readonly
        self._local = threading.local()
        if not readonly:
            try:
                Path(state_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                raise StateError(f"state_dir {state_dir}: cannot create: {exc.strerror}") from exc
        with self.transaction() as conn:
            if not readonly:
                # executescript() would COMMIT the transaction first; run the statements in it
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
        return conn

    def _connect(self) -> sqlite3.Connection:
        try:
            if self.readonly:
                uri = f"file:{self.path}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, timeout=10, isolation_level=None,
                                       check_same_thread=False)
            else:
                conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                       check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: cannot open the state database: {exc}") from exc
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` if the block raises."""
        conn = self.conn
        try:
            conn.execute("BEGIN" if self.readonly else "BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: {exc}") from exc
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StateError(f"{self.path}: cannot commit: {exc}") from exc

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def get_value(conn: sqlite3.Connection, ns: str, key: str) -> Any:
    """The JSON value stored under ``(ns, key)``, or ``None``."""
    row = conn.execute("SELECT value FROM kv WHERE ns = ? AND key = ?", (ns, key)).fetchone()
    return None if row is None else json.loads(row[0])


def get_values(conn: sqlite3.Connection, ns: str) -> dict[str, Any]:
    """Every ``key -> value`` stored under ``ns``."""
    rows = conn.execute("SELECT key, value FROM kv WHERE ns = ?", (ns,))
    return {key: json.loads(value) for key, value in rows}


def put_value(conn: sqlite3.Connection, ns: str, key: str, value: Any) -> None:
    """Store ``value`` (JSON-able) under ``(ns, key)``; ``None`` deletes it."""
    if value is None:
        conn.execute(_DELETE, (ns, key))
    else:
        conn.execute(_UPSERT, (ns, key, encode(value)))


def put_values(conn: sqlite3.Connection, ns: str, items: Iterable[tuple[str, Any]]) -> None:
    """:func:`put_value` for many ``(key, value)`` pairs (distinct keys), two statements in all."""
    upserts: list[tuple[str, str, str]] = []
    deletes: list[tuple[str, str]] = []
    for key, value in items:
        if value is None:
            deletes.append((ns, key))
        else:
            upserts.append((ns, key, encode(value)))
    if deletes:
        conn.executemany(_DELETE, deletes)
    if upserts:
        conn.executemany(_UPSERT, upserts)


def encode(value: Any) -> str:
    """The stored (compact JSON) form of ``value``."""
    return _ENCODER.encode(value)
