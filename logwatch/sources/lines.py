"""Bytes into whole lines: a partial last line waits, an over-long line is cut and marked.

:func:`split_lines` is the tailer's one way of turning what it read into lines;
a line over ``max_line_length`` bytes is cut there, marked with :data:`CUT_MARK`,
and the rest of it skipped, so memory never grows with line length.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: appended to a line cut at ``max_line_length`` bytes
CUT_MARK = b" [logwatch: line longer than %d bytes, cut]"


@dataclass(frozen=True, slots=True)
class Split:
    """What :func:`split_lines` made of a block: pieces to return, bytes consumed, skip state."""

    #: (offset in the block, bytes): whole lines; a cut line is a piece of its own
    pieces: tuple[tuple[int, bytes], ...]
    consumed: int
    skipping: bool


def split_lines(data: bytes, cap: int, skipping: bool) -> Split:
    """Cut ``data`` into whole lines, capping lines over ``cap`` bytes.

    ``skipping`` means ``data`` starts inside a line already cut: drop up to its
    newline. Bytes after the last newline are not consumed (a partial line), unless
    they already exceed ``cap``: then the line is cut now and the rest skipped.
    """
    if all_whole(data, cap, skipping):
        return Split(((0, data),), len(data), False)  # the usual read: a few whole lines
    pos = 0
    if skipping:
        newline = data.find(b"\n")
        if newline < 0:
            return Split((), len(data), True)
        pos = newline + 1
    pieces: list[tuple[int, bytes]] = []
    end = data.rfind(b"\n") + 1
    if end > pos:
        block = data[pos:end]
        if _longest_at_most(block, cap):
            pieces.append((pos, block))
        else:
            pieces.extend((pos + at, piece) for at, piece in _cap_lines(block, cap))
        pos = end
    if len(data) - pos > cap:
        pieces.append((pos, cut_line(data[pos : pos + cap], cap)))
        return Split(tuple(pieces), len(data), True)
    return Split(tuple(pieces), pos, False)


def all_whole(data: bytes, cap: int, skipping: bool) -> bool:
    """Is ``data`` whole lines, none to cut, to be returned as it is? (The usual read: a
    few lines, shorter than one line may be, ending with a newline.)"""
    return len(data) <= cap + 1 and data[-1:] == b"\n" and not skipping


def _longest_at_most(block: bytes, cap: int) -> bool:
    """Is every line of ``block`` (whole lines) at most ``cap`` bytes long?

    Jumps from a line start to just past the last newline within ``cap`` bytes of it:
    one ``rfind`` per ``cap`` bytes, not a list of every line. A line longer than
    ``cap`` cannot be jumped over, since no newline within reach lies past its start.
    """
    pos, size = 0, len(block)
    while size - pos > cap + 1:
        newline = block.rfind(b"\n", pos, pos + cap + 1)
        if newline < 0:
            return False
        pos = newline + 1
    return True


def cut_line(line: bytes, cap: int) -> bytes:
    return line[:cap] + CUT_MARK % cap + b"\n"


def _cap_lines(block: bytes, cap: int) -> Iterable[tuple[int, bytes]]:
    """The slow path: runs of normal lines, and each over-long line cut, as separate pieces."""
    run_start = pos = 0
    while pos < len(block):
        end = block.index(b"\n", pos) + 1
        if end - pos - 1 > cap:
            if pos > run_start:
                yield run_start, block[run_start:pos]
            yield pos, cut_line(block[pos:end], cap)
            run_start = end
        pos = end
    if pos > run_start:
        yield run_start, block[run_start:pos]
