"""The state's costs: page caches (the main thread's sized for a catch-up, the senders'
small, so that a burst does not grow every connection's), checkpoints off the main loop,
one JSON encoder for every stored value."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import logwatch.state
from logwatch.state import (
    CACHE_KIB,
    DB_NAME,
    THREAD_CACHE_KIB,
    Checkpointer,
    State,
    encode,
    get_values,
    put_value,
    wal_size,
)
from tests.helpers import wait_for


def cache_kib(state: State) -> int:
    (size,) = state.conn.execute("PRAGMA cache_size").fetchone()
    return -int(size)


def test_the_opening_thread_gets_the_big_cache_other_threads_a_small_one(
        tmp_path: Path) -> None:
    state = State(tmp_path)
    seen: list[int] = []

    def sender() -> None:
        seen.append(cache_kib(state))
        state.close()

    thread = threading.Thread(target=sender)
    thread.start()
    thread.join()
    assert cache_kib(state) == CACHE_KIB
    assert seen == [THREAD_CACHE_KIB]
    assert THREAD_CACHE_KIB < CACHE_KIB
    state.close()


def test_a_checkpointer_copies_the_wal_back_from_its_own_thread(tmp_path: Path) -> None:
    """The commits' connection does no checkpoint (no fsync in the main loop's commit); the
    checkpointer's thread copies what was committed into the database file."""
    state = State(tmp_path)
    checkpointer = Checkpointer(state, every=0.05)
    (pages,) = state.conn.execute("PRAGMA wal_autocheckpoint").fetchone()
    assert pages == 0
    db = tmp_path / DB_NAME
    before = db.stat().st_size
    with state.transaction() as conn:
        for n in range(3000):
            put_value(conn, "test", f"key-{n}", "x" * 200)
    wait_for(lambda: db.stat().st_size > before + 500_000, 10, message="the WAL copied back")
    checkpointer.stop()
    state.close()
    reopened = State(tmp_path)
    with reopened.transaction() as conn:
        assert len(get_values(conn, "test")) == 3000
    reopened.close()


def write_pages(state: State, tag: str, rows: int = 1000) -> None:
    """A transaction of ``rows`` rows of 200 bytes: about ``rows / 16`` pages."""
    with state.transaction() as conn:
        for n in range(rows):
            put_value(conn, "test", f"key-{tag}-{n}", "x" * 200)


def test_the_wal_size_is_its_files(tmp_path: Path) -> None:
    """:func:`wal_size` is the WAL file's size, ``None`` without one."""
    state = State(tmp_path)
    state.conn.execute("PRAGMA wal_autocheckpoint=0")
    write_pages(state, "a")
    assert wal_size(state.path) == Path(f"{state.path}-wal").stat().st_size > 200_000
    state.close()
    assert wal_size(tmp_path / "nothing.sqlite3") is None


def test_the_wal_is_cut_back_when_it_starts_again(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Once copied back whole, the WAL is written from its beginning again, and its file cut
    back to CHECKPOINT_GROWTH: its growth after a burst counts new writes again."""
    monkeypatch.setattr(logwatch.state, "CHECKPOINT_GROWTH", 64 << 10)
    state = State(tmp_path)
    state.conn.execute("PRAGMA wal_autocheckpoint=0")
    write_pages(state, "a", rows=2000)
    assert (wal_size(state.path) or 0) > 4 * (64 << 10)
    (busy, pages, copied), = state.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    assert busy == 0 and pages == copied
    write_pages(state, "b", rows=1)
    assert (wal_size(state.path) or 0) <= 64 << 10
    state.close()


def count_looks(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """Every size the checkpointer's looks at the WAL find, as they come."""
    looked: list[int | None] = []

    def counted(db: Path) -> int | None:
        looked.append(size := wal_size(db))
        return size

    monkeypatch.setattr(logwatch.state, "wal_size", counted)
    return looked


def test_a_small_wal_waits_for_every(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The checkpointer looks at the WAL every ``look`` s, and copies it back only once it
    has grown by CHECKPOINT_GROWTH or ``every`` s have passed."""
    looked = count_looks(monkeypatch)
    state = State(tmp_path)
    checkpointer = Checkpointer(state, every=3600.0, look=0.02)
    db = tmp_path / DB_NAME
    try:
        write_pages(state, "a")
        before = db.stat().st_size
        wait_for(lambda: len([p for p in looked if p]) >= 3, 10, message="three looks")
        assert db.stat().st_size == before  # under CHECKPOINT_GROWTH: not copied back yet
        monkeypatch.setattr(logwatch.state, "CHECKPOINT_GROWTH", 10_000)
        write_pages(state, "b")
        wait_for(lambda: db.stat().st_size > before + 100_000, 10,
                 message="the WAL grown by CHECKPOINT_GROWTH copied back")
    finally:
        checkpointer.stop()
        state.close()


#: SQLite's "dead man switch" lock byte in ``-shm`` (``UNIX_SHM_DMS``, os_unix.c): every
#: process using the WAL holds it shared; one that can lock it exclusively takes itself for
#: the only user and resets the shared memory
_SHM_DMS = 128
_TAKE_DMS = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, int(sys.argv[2]))
except OSError:
    print("held")
else:
    print("free")
"""


def test_the_checkpointer_leaves_sqlites_locks_alone(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Looking at the WAL opens none of SQLite's files: closing a descriptor drops every
    POSIX lock of the process on the file, and another process (``logwatch status``, a
    benchmark polling the outbox) would then reset the shared memory under the daemon,
    which dies of SIGBUS (what reading the WAL-index header from ``-shm`` did)."""
    looked = count_looks(monkeypatch)
    state = State(tmp_path)
    checkpointer = Checkpointer(state, every=3600.0, look=0.01)
    try:
        write_pages(state, "a", rows=10)
        wait_for(lambda: len(looked) >= 3, 10, message="three looks at the WAL")
        taken = subprocess.run([sys.executable, "-c", _TAKE_DMS, f"{state.path}-shm",
                                str(_SHM_DMS)], capture_output=True, text=True, check=True)
        assert taken.stdout.strip() == "held"
    finally:
        checkpointer.stop()
        state.close()


#: what the state stores: JSON trees of every kind of leaf, odd floats and text included
_LEAVES = (st.none() | st.booleans() | st.integers() | st.floats() | st.text()
           | st.integers(min_value=2**63, max_value=2**70))
_TREES = st.recursive(_LEAVES, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(value=_TREES)
def test_the_shared_encoder_writes_what_a_new_one_writes(value: Any) -> None:
    """One C encoder kept for every value (not one built per call) gives the same text."""
    expected = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode(value)
    assert encode(value) == expected
    assert encode(value) == expected  # nothing kept from the call before
