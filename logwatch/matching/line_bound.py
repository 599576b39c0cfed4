"""Patterns that cannot see past a line, so one search can cover many lines.

The naive loop searches each line on its own. For a pattern in which nothing
can match a newline, searching the candidate lines joined with ``"\\n"``
(with ``^``/``$`` made per-line by ``MULTILINE``) finds, for each line, exactly
the match a search of that line alone finds, groups included:

- every match consumes at least one character at its start and cannot consume
  ``"\\n"``, so it starts and ends inside one line;
- at every position of a line, each primitive gives the same answer in the
  joined text as in the line alone: a character test at the line's edges meets
  ``"\\n"`` (which no test of the pattern accepts) instead of the string's end
  (which no test accepts either); ``\\b``/``\\B`` see ``"\\n"``, a non-word
  character, where the line alone sees the string's edge, also non-word;
  ``^``/``$`` under ``MULTILINE`` hold exactly at the line's edges. Lookarounds
  and backreferences are built from those primitives, so they agree too;
- so the matcher's whole search from any start position inside a line is the
  same, and the first match at or after the line's start is the line's match.

What is refused (the rule keeps the per-line search): anything that can match
``"\\n"`` (``\\s``, ``\\W``, ``\\D``, ``.`` under DOTALL, negated classes without
``\\n``, a literal newline...), ``\\A`` and ``\\Z`` (string, not line, edges), a
pattern that can match the empty string, and syntax only the ``regex`` module
reads (the standard library's parser is used, warnings as errors).
"""

from __future__ import annotations

import re._constants as sre_c  # type: ignore[import-not-found]  # no stubs for the stdlib parser
import re._parser as sre_parse  # type: ignore[import-not-found]
from collections.abc import Iterable
from typing import Any

import regex

from logwatch.matching.literals import parse

NEWLINE = ord("\n")
#: pattern flags under which the reasoning above does not hold (or was not checked)
_REFUSED_FLAGS = (regex.DOTALL | regex.WORD | regex.VERSION1 | regex.REVERSE | regex.POSIX
                  | regex.BESTMATCH | regex.ENHANCEMATCH)
#: class categories that never contain "\n", and those that always do
_LACK_NEWLINE = frozenset({sre_c.CATEGORY_DIGIT, sre_c.CATEGORY_WORD,
                           sre_c.CATEGORY_NOT_SPACE, sre_c.CATEGORY_NOT_LINEBREAK})
_HAVE_NEWLINE = frozenset({sre_c.CATEGORY_SPACE, sre_c.CATEGORY_NOT_DIGIT,
                           sre_c.CATEGORY_NOT_WORD, sre_c.CATEGORY_LINEBREAK})
#: zero-width assertions that mean the same per line and, under MULTILINE, in joined lines
_SAFE_AT = frozenset({sre_c.AT_BEGINNING, sre_c.AT_BEGINNING_LINE, sre_c.AT_END,
                      sre_c.AT_END_LINE, sre_c.AT_BOUNDARY, sre_c.AT_NON_BOUNDARY})
_REPEATS = (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT)


class _Refused(Exception):
    """The pattern may see past a line."""


def line_bound(pattern: regex.Pattern[str]) -> regex.Pattern[str] | None:
    """A ``MULTILINE`` twin of ``pattern`` safe to run over lines joined with ``"\\n"``.

    Inside one line there is no ``"\\n"``, so a class may lose it without
    changing any match: ``\\s`` becomes ``[^\\S\\n]``, ``[^)]`` becomes ``[^)\\n]``
    (:func:`without_newline`), which makes ``\\s*$`` and the like line-bound.
    ``None`` when the pattern is not provably line-bound (see the module docstring).
    """
    if pattern.flags & _REFUSED_FLAGS:
        return None
    text = pattern.pattern
    rewritten = without_newline(text)
    tree, new_tree = parse(text), parse(rewritten)
    if tree is None or new_tree is None or tree.state.flags != new_tree.state.flags:
        return None
    # the rewrite is trusted only if the parser sees the same pattern, classes less "\n"
    if not _same(tree, new_tree):
        return None
    try:
        if _min_width(new_tree, bool(new_tree.state.flags & sre_c.SRE_FLAG_DOTALL)) < 1:
            return None
    except (_Refused, RecursionError):
        return None
    try:
        twin = regex.compile(rewritten, pattern.flags | regex.MULTILINE)
    except (regex.error, ValueError):
        return None
    if twin.groupindex != pattern.groupindex or twin.groups != pattern.groups:
        return None
    return twin


#: escapes outside a class that match "\n", and their equivalents without it
_OUTSIDE = {"s": r"[^\S\n]", "W": r"[^\w\n]", "D": r"[^\d\n]"}


def without_newline(text: str) -> str:
    """``text`` with ``\\s``, ``\\W``, ``\\D`` and negated classes made to exclude ``"\\n"``.

    A plain scan of the pattern's text; :func:`line_bound` accepts the result
    only if the parser reads it as the same pattern apart from those classes.
    """
    out: list[str] = []
    i, size = 0, len(text)
    while i < size:
        c = text[i]
        if c == "\\" and i + 1 < size:
            out.append(_OUTSIDE.get(text[i + 1], text[i : i + 2]))
            i += 2
        elif c == "[":
            end = _class_end(text, i)
            if end < 0:
                out.append(text[i:])
                break
            negated = text.startswith("[^", i)
            out.append(text[i:end] + ("\\n]" if negated else "]"))
            i = end + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _class_end(text: str, start: int) -> int:
    """Index of the ``]`` closing the class opened at ``start``, or -1."""
    j = start + 1
    if text.startswith("^", j):
        j += 1
    if text.startswith("]", j):
        j += 1  # a "]" first in a class is a literal
    while j < len(text) and text[j] != "]":
        j += 2 if text[j] == "\\" else 1
    return j if j < len(text) else -1


_CHAR_OPS = (sre_c.LITERAL, sre_c.NOT_LITERAL, sre_c.IN)
_COMPLEMENT = {sre_c.CATEGORY_SPACE: sre_c.CATEGORY_NOT_SPACE,
               sre_c.CATEGORY_WORD: sre_c.CATEGORY_NOT_WORD,
               sre_c.CATEGORY_DIGIT: sre_c.CATEGORY_NOT_DIGIT}
_COMPLEMENT |= {v: k for k, v in _COMPLEMENT.items()}
_NL = (sre_c.LITERAL, NEWLINE)


def _same(a: Any, b: Any) -> bool:
    """Whether two parses are the same pattern, except that classes may differ by "\\n"."""
    if isinstance(a, sre_parse.SubPattern) and isinstance(b, sre_parse.SubPattern):
        return len(a) == len(b) and all(_same_node(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, sre_parse.SubPattern) or isinstance(b, sre_parse.SubPattern):
        return False
    return bool(a == b)


def _same_node(a: tuple[Any, Any], b: tuple[Any, Any]) -> bool:
    if a[0] in _CHAR_OPS and b[0] in _CHAR_OPS:
        return _without_nl(*a) == _without_nl(*b)
    return a[0] is b[0] and _same(a[1], b[1])


def _without_nl(op: Any, av: Any) -> tuple[bool, frozenset[Any]]:
    """A character test less "\\n", canonically: (negated, items)."""
    if op is sre_c.LITERAL:
        return False, frozenset({(op, av)})
    if op is sre_c.NOT_LITERAL:
        return True, frozenset({(sre_c.LITERAL, av), _NL})
    items = frozenset(item for item in av if item[0] is not sre_c.NEGATE)
    if len(items) < len(av):
        return True, items | {_NL}  # complement(S) less "\n" = complement(S and "\n")
    if len(items) == 1 and (item := next(iter(items)))[0] is sre_c.CATEGORY \
            and item[1] in _COMPLEMENT:
        return True, frozenset({(sre_c.CATEGORY, _COMPLEMENT[item[1]]), _NL})
    return False, items - {_NL}


def _min_width(items: Iterable[tuple[Any, Any]], dotall: bool) -> int:
    """The fewest characters a match of ``items`` consumes; ``_Refused`` if one can be "\\n"."""
    width = 0
    for op, av in items:
        width += _node(op, av, dotall)
    return width


def _node(op: Any, av: Any, dotall: bool) -> int:
    if op is sre_c.LITERAL:
        _refuse_if(av == NEWLINE)
        return 1
    if op is sre_c.NOT_LITERAL:
        _refuse_if(av != NEWLINE)
        return 1
    if op is sre_c.ANY:
        _refuse_if(dotall)
        return 1
    if op is sre_c.IN:
        _refuse_if(_class_has_newline(av))
        return 1
    if op is sre_c.AT:
        _refuse_if(av not in _SAFE_AT)
        return 0
    if op is sre_c.SUBPATTERN:
        _, add, remove, body = av
        inner = (dotall or bool(add & sre_c.SRE_FLAG_DOTALL)) and not remove & sre_c.SRE_FLAG_DOTALL
        return _min_width(body, inner)
    if op is sre_c.ATOMIC_GROUP:
        return _min_width(av, dotall)
    if op in _REPEATS:
        low: int = av[0]
        return low * _min_width(av[2], dotall)
    if op is sre_c.BRANCH:
        return min(_min_width(alt, dotall) for alt in av[1])
    if op in (sre_c.ASSERT, sre_c.ASSERT_NOT):
        _min_width(av[1], dotall)  # its body must not see past the line either
        return 0
    if op is sre_c.GROUPREF:
        return 0  # repeats what a group (inside the line) matched; may be empty
    if op is sre_c.GROUPREF_EXISTS:
        _, yes, no = av
        return min(_min_width(yes, dotall), _min_width(no, dotall) if no is not None else 0)
    raise _Refused(str(op))


def _class_has_newline(items: list[tuple[Any, Any]]) -> bool:
    negate = False
    found = False
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            found = found or av == NEWLINE
        elif op is sre_c.RANGE:
            found = found or av[0] <= NEWLINE <= av[1]
        elif op is sre_c.CATEGORY and (av in _LACK_NEWLINE or av in _HAVE_NEWLINE):
            found = found or av in _HAVE_NEWLINE
        else:
            raise _Refused(str(op))  # not expected from the parser: assume the worst
    return found != negate


def _refuse_if(condition: bool) -> None:
    if condition:
        raise _Refused
