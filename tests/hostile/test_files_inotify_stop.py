"""Stopping or reloading while files are written logs no error (the watchdog era's "thread is inactive")."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from logwatch.sources.inotify import Watcher


def test_stop_during_writes_logs_no_inactive_thread_error(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """Every stop raced a stream of writes; none logs "thread is inactive" (it did 1 in 15)."""
    target = tmp_path / "app.log"
    done = threading.Event()

    def writer() -> None:
        while not done.is_set():
            with target.open("a") as f:
                f.write("x\n")

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with caplog.at_level(logging.ERROR):
            for _ in range(60):
                watcher = Watcher(lambda _path: None, lambda _path: True)
                watcher.update([str(tmp_path)])
                done.wait(0.01)
                watcher.stop()
    finally:
        done.set()
        thread.join()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
