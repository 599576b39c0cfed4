"""Sources: where log lines come from (files, the systemd journal).

A :class:`Source` returns :class:`~logwatch.models.Chunk` s of whole lines and a
JSON checkpoint that covers exactly what it returned. The service stores the
checkpoint in the same transaction as the alerts those chunks produced, so a
crash replays the same bytes under the same line keys (see docs/architecture.md).

Kinds of source live in :data:`SOURCE_KINDS`; :func:`build_sources` picks one per
``[sources.NAME]`` table: the files when any of them exists (or no journal is
configured), else the journal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from logwatch.config import Config, JournalSource, SourceConfig
from logwatch.models import Chunk
from logwatch.sources.files import FileSource, file_rows
from logwatch.sources.journal import JournalFollower
from logwatch.sources.paths import existing_files

log = logging.getLogger(__name__)

#: the ``read()`` budget when the caller gives none
DEFAULT_READ_BYTES = 4 << 20


class Source(Protocol):
    """One ``[sources.NAME]``: follows its streams and says where it is."""

    name: str

    def open(self, checkpoint: Mapping[str, Any] | None) -> None:
        """Restore positions from the last committed checkpoint (None: first run)."""

    def read(self, max_bytes: int = DEFAULT_READ_BYTES) -> list[Chunk]:
        """Whole lines that are new since the last read, at most about ``max_bytes``."""

    def pending(self, *, queued: bool = True) -> bool:
        """Might :meth:`read` return something now? False: skip the read until a wake-up.

        Cheap (no file or pipe is read): the service asks it before each read, so that
        the read that would find nothing is not made. ``queued=False``: leave out what
        :meth:`fileno` will announce anyway (to stop reading and let ``batch_wait``
        gather more); never before the first read after a wake-up.
        """

    def checkpoint(self) -> dict[str, Any]:
        """JSON-able position covering exactly what :meth:`read` has returned."""

    def checkpoint_text(self) -> str:
        """:meth:`checkpoint` encoded as ``logwatch.state.encode`` stores it (may be cached)."""

    def describe(self) -> list[str]:
        """Startup banner lines: what is followed, what is missing and waited for."""

    def fileno(self) -> int | None:
        """A descriptor the service waits on, readable when data may be new (None: none)."""

    def close(self) -> None:
        """Stop threads and subprocesses, close files."""


#: builds a Source from its table, the settings and the wake-up callback
SourceFactory = Callable[[SourceConfig, Config, Callable[[], None]], Source]
#: turns a stored checkpoint into ``logwatch status`` rows
RowsFunction = Callable[[str, Mapping[str, Any]], list[dict[str, Any]]]


def _file_source(table: SourceConfig, config: Config, wake: Callable[[], None]) -> Source:
    return FileSource(table.name, table.files, config.settings, wake)


def _journal_source(table: SourceConfig, config: Config, wake: Callable[[], None]) -> Source:
    # a journal source with files: none of them exists here (source_kind), the banner says so
    return JournalFollower(table.name, table.journal or JournalSource(), config.settings, wake,
                           instead_of=table.files)


def _journal_rows(name: str, checkpoint: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"source": name, "cursor": checkpoint.get("cursor") or "(none yet)"}]


#: kind -> (factory, status rows); the checkpoint's ``"kind"`` names its entry
SOURCE_KINDS: dict[str, tuple[SourceFactory, RowsFunction]] = {
    "files": (_file_source, file_rows),
    "journal": (_journal_source, _journal_rows),
}


def source_kind(table: SourceConfig) -> str:
    """Which kind follows ``table``: its files if any exists (or there is no journal)."""
    if table.journal is None:
        return "files"
    if not table.files:
        return "journal"
    return "files" if existing_files(table.files) else "journal"


def build_sources(config: Config, wake: Callable[[], None]) -> list[Source]:
    """One Source per ``[sources.NAME]``; ``wake`` is called (any thread) when data may be new."""
    sources: list[Source] = []
    for table in config.sources.values():
        factory, _ = SOURCE_KINDS[source_kind(table)]
        sources.append(factory(table, config, wake))
    return sources


def checkpoint_rows(name: str, checkpoint: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows for ``logwatch status``: per file offset, size and lag now, or the journal cursor."""
    entry = SOURCE_KINDS.get(str(checkpoint.get("kind", "")))
    if entry is None:
        return [{"source": name, "path": "(unknown checkpoint)", "offset": 0, "size": None,
                 "lag": None}]
    return entry[1](name, checkpoint)
