"""Replay a large file on every core: segments of whole lines, scanned by worker processes.

``logwatch test`` on a big file is CPU-bound in one process (the GIL). The file
is cut into segments of about :data:`SEGMENT` bytes, each ending just after a
newline, so every line belongs to exactly one segment; forked workers (they
inherit the compiled rules) each read and scan whole segments, and the parent
adds their tallies in file order. Hits, line numbers, samples and their order
are what one process finds: a segment is just a larger chunk, and the matcher's
result for a line never depends on the lines around it, except through a rule's
``context``, which looks back at most ``within`` lines: a worker first reads that
many lines before its segment into its memory (:func:`lines_before`).

At most ``2 * jobs`` segments are in flight, so memory stays flat on a file of
any size, even with ``--json``.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import stat
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, BinaryIO

from logwatch.commands.tally import Tally, tally
from logwatch.errors import LogwatchError
from logwatch.matching.context import ContextMemory

if TYPE_CHECKING:
    from logwatch.matching.matcher import Matcher

#: bytes per segment: large enough that a task's overhead is noise, small enough to spread work
SEGMENT = 4 << 20
#: how far from a segment boundary to look for the next newline, per read
_PROBE = 64 << 10
#: the most a worker reads back for a rule's context (lines that long are cut short)
MAX_LOOKBACK = 64 << 20


class _Worker:
    """What a worker process scans with: the parent's rules (inherited by fork), its file."""

    job: tuple[Matcher, str, bool] | None = None

    @classmethod
    def start(cls, matcher: Matcher, name: str, as_json: bool) -> None:
        cls.job = (matcher, name, as_json)


def default_jobs() -> int:
    """The CPUs this process may run on."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worth_it(stream: BinaryIO) -> bool:
    """Whether ``stream`` is a regular file big enough to share out (and fork is available)."""
    info = os.fstat(stream.fileno())
    return (stat.S_ISREG(info.st_mode) and info.st_size >= 2 * SEGMENT
            and "fork" in multiprocessing.get_all_start_methods())


def boundaries(stream: BinaryIO, size: int, segment: int | None = None) -> list[int]:
    """Offsets ``0 = b0 < b1 < ... < bn = size``, each ``bi`` just after a newline.

    Segments are about ``segment`` bytes (default :data:`SEGMENT`); a line longer
    than that makes its segment longer: boundaries never cut a line.
    """
    segment = segment or SEGMENT
    cuts = [0]
    for target in range(segment, size, segment):
        if target <= cuts[-1]:
            continue  # a long line already took us past this one
        cut = _next_line_start(stream, target, size)
        if cut > cuts[-1]:
            cuts.append(cut)
    if cuts[-1] != size:
        cuts.append(size)
    return cuts


def _next_line_start(stream: BinaryIO, pos: int, size: int) -> int:
    stream.seek(pos - 1)
    while pos - 1 < size:
        block = stream.read(_PROBE)
        if not block:
            break
        newline = block.find(b"\n")
        if newline >= 0:
            return pos + newline
        pos += len(block)
    return size


class WorkerDied(LogwatchError):
    """A worker process ended without finishing its segment (killed, out of memory...)."""


def replay_file(matcher: Matcher, stream: BinaryIO, jobs: int, as_json: bool,
                add: Callable[[Tally], None]) -> None:
    """Scan ``stream``'s file with ``jobs`` workers; ``add`` each segment's tally, in order.

    The workers are forked, so they inherit the compiled rules instead of
    receiving them pickled (Hyperscan databases do not pickle). A worker that
    dies is reported (:class:`WorkerDied`), never waited for.
    """
    cuts = boundaries(stream, os.fstat(stream.fileno()).st_size)
    context = multiprocessing.get_context("fork")
    try:
        with ProcessPoolExecutor(jobs, context, _Worker.start,
                                 (matcher, stream.name, as_json)) as pool:
            pending: deque[Future[Tally]] = deque()
            for start, stop in itertools.pairwise(cuts):
                pending.append(pool.submit(_scan_segment, start, stop))
                if len(pending) >= 2 * jobs:
                    add(pending.popleft().result())
            while pending:
                add(pending.popleft().result())
    except BrokenProcessPool as exc:
        raise WorkerDied("a worker process stopped before finishing its part of the file "
                         "(killed, or out of memory?); try -j 1") from exc


def _scan_segment(start: int, stop: int) -> Tally:
    """In a worker: the tally of the lines in ``[start, stop)`` of the file."""

    if _Worker.job is None:
        raise RuntimeError("a replay worker started without its rules")
    matcher, name, as_json = _Worker.job
    memory = ContextMemory.of(matcher.rules)
    with open(name, "rb") as stream:
        if memory is not None:
            within = max(link.within for link in memory.links.values())
            _warm_up(matcher, memory, lines_before(stream, start, within))
        stream.seek(start)
        data = stream.read(stop - start)
    if data and not data.endswith(b"\n"):
        data += b"\n"  # the file's last line, as read_chunks gives it
    ignored, timeouts = Counter(matcher.ignored), Counter(matcher.timeouts)
    result = tally(matcher, data, as_json, memory)
    result.ignored = matcher.ignored - ignored
    result.timeouts = matcher.timeouts - timeouts
    return result


def _warm_up(matcher: Matcher, memory: ContextMemory, data: bytes) -> None:
    """Remember what the lines before a segment lend (their hits belong to the segment
    before)."""
    for _ in memory.hits(matcher.find(data).of_rules(memory.links), data):
        pass
    memory.unlinked.clear()


def lines_before(stream: BinaryIO, pos: int, count: int) -> bytes:
    """The ``count`` whole lines that end at ``pos`` (a line start), or as many as there are
    (at most :data:`MAX_LOOKBACK` bytes)."""
    size = _PROBE
    while True:
        begin = max(0, pos - size)
        stream.seek(begin)
        block = stream.read(pos - begin)
        cut = len(block) - 1  # the newline that ends the line before pos
        for _ in range(count):
            cut = block.rfind(b"\n", 0, cut)
            if cut < 0:
                break
        if cut >= 0:
            return block[cut + 1:]
        if begin == 0:
            return block
        if size >= MAX_LOOKBACK:
            return block[block.find(b"\n") + 1:]  # whole lines only
        size *= 2
