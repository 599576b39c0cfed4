"""The state's page caches: the main thread's sized for a catch-up, the senders' small, so
that a burst of alerts does not grow every connection's cache (issue 17: RSS under a burst)."""

from __future__ import annotations

import threading
from pathlib import Path

from logwatch.state import CACHE_KIB, THREAD_CACHE_KIB, State


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
