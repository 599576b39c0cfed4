"""Fixtures for the source tests: settings, and a reader that drives a Source like the service."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from logwatch.config import Settings
from logwatch.models import Chunk
from logwatch.sources.files import FileSource


def make_settings(tmp_path: Path, **changes: Any) -> Settings:
    """Settings for tests: a fast periodic check unless told otherwise."""
    values: dict[str, Any] = {"state_dir": tmp_path / "state", "hostname": "test",
                              "poll_interval": 0.05}
    values.update(changes)
    return Settings(**values)


class Reader:
    """Calls ``read()`` as the service does and records every line with its key."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.lines: list[bytes] = []
        self.keys: list[str] = []
        self.chunks: list[Chunk] = []
        self.woken = threading.Event()

    def wake(self) -> None:
        """The callback given to the source."""
        self.woken.set()

    def read_once(self, max_bytes: int = 4 << 20) -> int:
        """One read(); how many lines it returned."""
        count = 0
        for chunk in self.source.read(max_bytes):
            self.chunks.append(chunk)
            start = 0
            while start < len(chunk.data):
                end = chunk.data.index(b"\n", start) + 1
                self.lines.append(chunk.data[start:end])
                self.keys.append(chunk.line_key(start))
                start = end
                count += 1
        return count

    def until(self, predicate: Callable[[], bool], timeout: float = 15.0,
              idle: float = 0.01) -> None:
        """Read (waiting for a wake-up or ``idle`` between reads) until ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s; {len(self.lines)} lines read")
            if not self.read_once():
                self.woken.wait(idle)
                self.woken.clear()

    def texts(self) -> list[str]:
        """The lines read, decoded, without their newline."""
        return [line[:-1].decode("utf-8", "replace") for line in self.lines]

    def assert_unique_keys(self) -> None:
        """No two lines ever got the same key (the key makes the alert id)."""
        duplicates = [k for k, n in Counter(self.keys).items() if n > 1]
        assert not duplicates, duplicates[:5]


@pytest.fixture
def follow(tmp_path: Path) -> Iterator[Callable[..., Reader]]:
    """Build, open and (at teardown) close a FileSource wrapped in a :class:`Reader`."""
    opened: list[FileSource] = []

    def start(patterns: list[str | Path], checkpoint: Any = None, quiet: float = 0.3,
              **settings: Any) -> Reader:
        reader = Reader(None)
        source = FileSource("test", [str(p) for p in patterns], make_settings(tmp_path, **settings),
                            reader.wake, quiet=quiet)
        reader.source = source
        source.open(checkpoint)
        opened.append(source)
        return reader

    yield start
    for source in opened:
        source.close()
