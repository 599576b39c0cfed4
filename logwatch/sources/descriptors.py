"""The open descriptors of followed files: at most :func:`limit`, the least recently used closed.

Following N files must not need N descriptors (``files = ["/srv/logs/*.log"]`` may
name thousands, against systemd's default ``LimitNOFILE=1024``). A followed file
whose descriptor was closed here is *parked*: the tailer reopens it by path (and
checks its inode) when its size says there is something to read.
"""

from __future__ import annotations

import resource
from collections import OrderedDict
from typing import Protocol

#: descriptors left for everything else: SQLite, sockets, pipes, journalctl, inotify
RESERVE = 64


class Parkable(Protocol):
    """What the pool needs of a followed file."""

    retired: bool

    def close(self) -> None:
        """Close the descriptor (it stays followed)."""


def limit() -> int:
    """How many descriptors followed files may hold: below RLIMIT_NOFILE, with room to spare."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        soft = 1 << 20
    return max(8, min(soft - RESERVE, soft * 3 // 4))


class OpenFiles:
    """The LRU of open descriptors, shared by every file source of the process."""

    def __init__(self, size: int | None = None) -> None:
        self._size = size
        self._lru: OrderedDict[int, Parkable] = OrderedDict()

    @property
    def size(self) -> int:
        """The most descriptors held at once (read from the limit at first use)."""
        if self._size is None:
            self._size = limit()
        return self._size

    def __len__(self) -> int:
        return len(self._lru)

    def opened(self, tail: Parkable) -> None:
        """``tail`` has just opened its descriptor: note it, and park the coldest if too many."""
        self._lru[id(tail)] = tail
        self._lru.move_to_end(id(tail))
        self.trim()

    def used(self, tail: Parkable) -> None:
        """``tail`` was read: it is the most recently used."""
        if id(tail) in self._lru:
            self._lru.move_to_end(id(tail))

    def closed(self, tail: Parkable) -> None:
        """``tail`` closed its descriptor."""
        self._lru.pop(id(tail), None)

    def trim(self, room: int = 0) -> None:
        """Park the least recently used files until ``room`` more fit (retired ones are kept:
        they are read to their end and closed soon)."""
        excess = len(self._lru) + room - self.size
        for key in list(self._lru):
            if excess <= 0:
                return
            tail = self._lru[key]
            if not tail.retired:
                tail.close()  # calls closed()
                excess -= 1


#: the process's pool
OPEN_FILES = OpenFiles()
