"""Which patterns may backtrack catastrophically: a repeat inside a repeat (``(a+)+``).

On a line that almost matches, such a pattern tries every way of splitting the
repeated text between the two repeats: exponential time. The matcher's timeout
stops each search; ``logwatch check`` names these patterns beforehand.
"""

from __future__ import annotations

import re
from re import _parser as sre_parse  # the stdlib's own parser (Python 3.11+)
from typing import Any

_REPEATS = {sre_parse.MAX_REPEAT, sre_parse.MIN_REPEAT}
_MANY = sre_parse.MAXREPEAT
NESTED_NOTE = ("nested repeats (a repeat inside a repeat, like (a+)+) can backtrack "
               "catastrophically on lines that almost match; each search is stopped after "
               "match_timeout, and the line is skipped for this rule: rewrite it without the "
               "nesting")


def has_nested_repeats(pattern: str) -> bool:
    """Does ``pattern`` repeat (unboundedly) something that itself repeats unboundedly?

    Patterns the stdlib parser does not understand (``regex``-only syntax) say False.
    """
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError, ValueError):
        return False
    return _nested(list(parsed), inside=False)


def _nested(items: list[tuple[Any, Any]], *, inside: bool) -> bool:
    for op, av in items:
        if op in _REPEATS:
            _low, high, sub = av
            unbounded = high == _MANY
            if unbounded and inside:
                return True
            if _nested(list(sub), inside=inside or unbounded):
                return True
        elif any(_nested(list(part), inside=inside) for part in _parts(op, av)):
            return True
    return False


def _parts(op: Any, av: Any) -> list[Any]:
    """The sub-patterns of a group, a branch, a lookaround or a conditional."""
    if op is sre_parse.SUBPATTERN:
        return [av[-1]]
    if op is sre_parse.BRANCH:
        return list(av[1])
    if op in (sre_parse.ASSERT, sre_parse.ASSERT_NOT):
        return [av[1]]
    if op is sre_parse.GROUPREF_EXISTS:
        return [p for p in av[1:] if p is not None]
    if op is getattr(sre_parse, "ATOMIC_GROUP", None):
        return []  # atomic: no backtracking into it
    return []
