"""The SQLite state in ``state_dir``: checkpoints, policy windows, destination state, outbox.

One database file, WAL mode, one connection per thread. Everything a crash must not
split (new outbox rows, the offset that produced them, the policy windows they
changed) is written in one :meth:`State.transaction`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from logwatch.errors import StateError

log = logging.getLogger(__name__)

DB_NAME = "state.sqlite3"
#: SQLite's result codes for a damaged file: SQLITE_CORRUPT, SQLITE_NOTADB
_DAMAGED_CODES = {11, 26}
#: one encoder for every value: ``json.dumps`` with options builds a new one per call;
#: stored values are plain trees (no cycles to look for)
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)
#: SQLite's page cache of the thread that opened the state (KiB): a catch-up rewrites
#: thousands of policy rows per transaction, spread over the whole kv table; the default
#: 2 MiB makes it re-read pages
CACHE_KIB = 8 << 10
#: the daemon's :class:`Checkpointer` copies the WAL back into the database every this many
#: seconds, or as soon as the WAL file has grown by CHECKPOINT_GROWTH bytes past the least
#: size it had since the last copy (the size of SQLite's own automatic checkpoint's bound,
#: 1,000 pages of 4 KiB), which it looks at every CHECKPOINT_LOOK s; and SQLite cuts the
#: file back to CHECKPOINT_GROWTH when it starts writing it from its beginning again
CHECKPOINT_EVERY = 5.0
CHECKPOINT_GROWTH = 4 << 20
CHECKPOINT_LOOK = 1.0
#: the other threads' (senders: the head of their queue, a row's status): each cache fills
#: up to its size during a burst, and the daemon's memory with it
THREAD_CACHE_KIB = 1 << 10
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


class DamagedStateError(StateError):
    """The state database file is damaged (corrupt pages, not a database at all)."""


def state_error(path: Path, exc: sqlite3.Error, doing: str = "") -> StateError:
    """The StateError for ``exc``: :class:`DamagedStateError` when the file is damaged."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    cls = DamagedStateError if code in _DAMAGED_CODES else StateError
    return cls(f"{path}: {doing}{exc}")


class State:
    """The state database; safe to share between threads (each gets its own connection).

    ``check``: run ``PRAGMA quick_check`` once opened (the daemon, at start); a damaged
    file raises :class:`DamagedStateError` (see :func:`open_state`).
    """

    def __init__(self, state_dir: Path, *, readonly: bool = False, check: bool = False) -> None:
        self.path = Path(state_dir) / DB_NAME
        self.readonly = readonly
        self._local = threading.local()
        self._owner = threading.get_ident()
        #: SQLite's own checkpoints, in the COMMIT that crosses 1,000 WAL pages (False: a
        #: :class:`Checkpointer` does them; set before the other threads connect)
        self.autocheckpoint = True
        if not readonly:
            try:
                Path(state_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                raise StateError(f"state_dir {state_dir}: cannot create: {exc.strerror}") from exc
        try:
            self._prepare(check)
        except sqlite3.Error as exc:
            self.close()
            raise state_error(self.path, exc) from exc
        except StateError:
            self.close()
            raise

    def _prepare(self, check: bool) -> None:
        if check:
            row = self.conn.execute("PRAGMA quick_check(1)").fetchone()
            if row is None or row[0] != "ok":
                raise DamagedStateError(f"{self.path}: damaged: {row[0] if row else 'no answer'}")
        with self.transaction() as conn:
            if not self.readonly:
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
                cache = CACHE_KIB if threading.get_ident() == self._owner else THREAD_CACHE_KIB
                conn.execute(f"PRAGMA cache_size=-{cache}")
                if not self.autocheckpoint:
                    conn.execute("PRAGMA wal_autocheckpoint=0")
                conn.execute(f"PRAGMA journal_size_limit={CHECKPOINT_GROWTH}")
        except sqlite3.Error as exc:
            raise state_error(self.path, exc, "cannot open the state database: ") from exc
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` if the block raises."""
        conn = self.conn
        try:
            conn.execute("BEGIN" if self.readonly else "BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise state_error(self.path, exc) from exc
        try:
            yield conn
        except BaseException:
            # SQLITE_FULL may have rolled back already: ROLLBACK then fails, harmlessly
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")  # a failed COMMIT (disk full) leaves it open
                raise state_error(self.path, exc, "cannot commit: ") from exc

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class Checkpointer:
    """Copies the WAL back into the database from a thread of its own, every few seconds.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL pages,
    and with ``synchronous=NORMAL`` it fsyncs: the main loop's commit then waits for the
    disk (10-15 ms here, a line's delivery with it). With one of these, the connections'
    automatic checkpoints are off and this thread does them, PASSIVE: it never blocks a
    writer, and a crash at any point leaves every committed transaction in the WAL or the
    database (a checkpoint only copies committed pages). Each costs a wake-up, two fsyncs
    and a copy of every page changed since the last one, however often it was rewritten
    meanwhile: one every ``every`` s, and sooner once the WAL file has grown by
    CHECKPOINT_GROWTH past its least size since the last one (:func:`wal_size`, looked at
    every ``look`` s), so that a burst of writes does not grow it for ``every`` s.
    """

    def __init__(self, state: State, every: float = CHECKPOINT_EVERY,
                 look: float = CHECKPOINT_LOOK) -> None:
        self.state = state
        self.every = every
        self.look = min(look, every)
        self._stop = threading.Event()
        state.autocheckpoint = False
        state.conn.execute("PRAGMA wal_autocheckpoint=0")  # the opener's, connected already
        self._thread = threading.Thread(target=self._run, name="state-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        failing = False
        last, size = time.monotonic(), wal_size(self.state.path)
        try:
            while not self._stop.wait(self.look):
                now = wal_size(self.state.path)
                if now is not None and size is not None:
                    size = min(size, now)  # SQLite cut it back (journal_size_limit)
                if not failing and time.monotonic() - last < self.every and (
                        now is not None and size is not None
                        and now - size < CHECKPOINT_GROWTH):
                    continue
                last, size = time.monotonic(), now
                try:
                    self.state.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except (sqlite3.Error, StateError) as exc:
                    if not failing:
                        log.warning("state: checkpoint of the WAL failed (%s); retrying every "
                                    "%gs", exc, self.look)
                    failing = True
                else:
                    failing = False
        finally:
            self.state.close()

    def stop(self) -> None:
        """End the thread (closing the database copies what is left of the WAL)."""
        self._stop.set()
        self._thread.join(timeout=10)


def wal_size(db: Path) -> int | None:
    """The size of database ``db``'s WAL file (``None``: none, or it cannot be told).

    A ``stat``, never an ``open``: closing a descriptor of a file drops every POSIX lock
    the process holds on it, SQLite's included, and another process (``logwatch status``)
    could then take the shared memory for unused and reset it under the daemon (SIGBUS).
    When SQLite starts writing the WAL from its beginning again (after a checkpoint copied
    all of it), it cuts the file back to ``journal_size_limit`` (CHECKPOINT_GROWTH); so the
    file's growth past its least size counts the writes of a burst, and the timer the rest.
    """
    try:
        return os.stat(f"{db}-wal").st_size
    except OSError:
        return None


def open_state(state_dir: Path) -> tuple[State, str | None]:
    """The daemon's state, checked; a damaged file is moved aside and a fresh one started.

    The second value says what happened to a damaged file (None: it was fine), for
    the log and for an alert: its checkpoints are lost, so sources start per ``start_at``.
    """
    try:
        return State(state_dir, check=True), None
    except DamagedStateError as exc:
        path = Path(state_dir) / DB_NAME
        aside = path.with_name(f"{DB_NAME}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
        try:
            for suffix in ("", "-wal", "-shm"):
                src = Path(f"{path}{suffix}")
                if src.exists():
                    os.replace(src, f"{aside}{suffix}")
        except OSError as move:
            raise StateError(f"{exc}; cannot move it aside: {move.strerror}") from exc
        what = (f"the state database was damaged ({exc}); moved it to {aside.name} and "
                "started afresh: offsets and windows are lost, sources start per start_at")
        log.error("%s", what)
        return State(state_dir, check=True), what


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
        put_text(conn, ns, key, encode(value))


def put_text(conn: sqlite3.Connection, ns: str, key: str, text: str) -> None:
    """Store a value already encoded as :func:`encode` does under ``(ns, key)``."""
    conn.execute(_UPSERT, (ns, key, text))


def put_values(conn: sqlite3.Connection, ns: str, items: Iterable[tuple[str, Any]]) -> None:
    """:func:`put_value` for many ``(key, value)`` pairs (distinct keys), two statements in all."""
    put_texts(conn, ns, [(key, None if value is None else encode(value)) for key, value in items])


def put_texts(conn: sqlite3.Connection, ns: str, items: Iterable[tuple[str, str | None]]) -> None:
    """:func:`put_text` for many ``(key, text)`` pairs (distinct keys; a ``None`` text deletes
    its key), two statements in all: a statement per row costs more than the row's write."""
    upserts: list[tuple[str, str, str]] = []
    deletes: list[tuple[str, str]] = []
    for key, text in items:
        if text is None:
            deletes.append((ns, key))
        else:
            upserts.append((ns, key, text))
    if deletes:
        conn.executemany(_DELETE, deletes)
    if upserts:
        conn.executemany(_UPSERT, upserts)


def one_shot_encoder(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    """``encoder.encode``, without building its C encoder again at every call.

    ``JSONEncoder.encode`` makes a new C encoder (and a closure) per value, which costs
    more than encoding a policy row; without cycle markers (``check_circular=False``) the
    C encoder keeps no state between calls, so one serves every value (and every thread).
    The same C encoder with the same arguments: the same text. Without the C accelerator,
    with options it does not take, or if its private signature ever changes (a start must
    not fail on it), ``encoder.encode``.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None or encoder.check_circular or encoder.indent is not None:
        return encoder.encode
    strings = (json.encoder.encode_basestring_ascii if encoder.ensure_ascii
               else json.encoder.encode_basestring)
    try:
        one_shot = make(None, encoder.default, strings, None, encoder.key_separator,
                        encoder.item_separator, encoder.sort_keys, encoder.skipkeys,
                        encoder.allow_nan)
    except TypeError:
        return encoder.encode
    join = "".join

    def encode(value: Any) -> str:
        return join(one_shot(value, 0))

    return encode


#: the stored (compact JSON, ASCII) form of a value (see :func:`one_shot_encoder`)
encode: Callable[[Any], str] = one_shot_encoder(_ENCODER)
