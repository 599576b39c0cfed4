"""The line filter: each whole pattern, loosened, run by Hyperscan over a chunk's bytes.

The literal prefilter (:mod:`logwatch.prefilter`) keeps a line if it contains one
literal of a rule; on logs where that literal is common (``sshd[``), most such
lines still fail the rule. With Hyperscan installed, the matcher does better:
each pattern is translated into a Hyperscan expression over *bytes* that matches
every line the pattern can match (a superset), and Hyperscan runs all of them
over the chunk at once, reporting each (pattern, line) pair once. The ``regex``
engine then confirms only those lines, so results stay exactly the naive loop's.

Why the translation is a superset (:func:`superset`), on a line's bytes ``B``
whose text ``T = B.decode("utf-8", "replace")`` the rule searches:

- an ASCII byte in ``B`` is the same character in ``T``, and every other
  character of ``T`` (a valid sequence, or a replacement character for an invalid
  one) comes from 1 to 4 bytes of ``B`` that are all >= 0x80;
- so a node that matches one character becomes a byte class (its ASCII members,
  computed by asking the ``regex`` engine itself with the pattern's flags) or,
  when it may also match a non-ASCII character, that class *or* 1 to 4 bytes
  >= 0x80. A repeat of such a node becomes a repeat of one class of all those
  bytes (a superset: each character is at least one byte);
- concatenation, alternation, groups and repeats keep their shape; anchors,
  ``\\b`` and lookarounds are dropped (no constraint is a weaker constraint);
  a backreference becomes "any bytes of the line"; a conditional becomes the
  alternation of its two branches; atomic groups and possessive repeats become
  plain ones (backtracking into them only adds matches);
- a line never contains ``"\\n"``, so no translated class contains it, and a
  node that can only match ``"\\n"`` can match nothing on a line.

Each expression is ``(?:translation)[^\\n]*$`` under ``MULTILINE``: its matches
end only at line ends, so Hyperscan reports each matching line once per pattern.
Patterns the translation does not cover (syntax only the ``regex`` module has,
flags it does not model, a construct Hyperscan refuses) keep the literal prefilter.
"""

from __future__ import annotations

import logging
import os
import re._constants as sre_c  # type: ignore[import-not-found]  # no stubs for the stdlib parser
from collections.abc import Sequence
from functools import cache
from typing import Any

import regex

from logwatch import hscache
from logwatch.prefilter import CASELESS_UNSAFE, MIN_SELECTIVITY, parse, strength

log = logging.getLogger(__name__)

NEWLINE = 0x0A
#: the ASCII bytes a character of a line can be ("\n" never is)
ASCII = frozenset(range(0x80)) - {NEWLINE}
#: one non-ASCII character of the decoded text, as bytes
NON_ASCII_CHAR = rb"[\x80-\xff]{1,4}"
NON_ASCII = frozenset(range(0x80, 0x100))
#: any text on a line
ANY_TEXT = rb"[^\n]*"
#: flags of a rule pattern that this translation models; any other means "no filter"
_MODELLED = (regex.IGNORECASE | regex.MULTILINE | regex.DOTALL | regex.VERBOSE | regex.UNICODE
             | regex.ASCII | regex.VERSION0)
#: regex-module flags and the stdlib parser's equivalents, to parse as the rule compiled
_SRE_FLAGS = {regex.IGNORECASE: sre_c.SRE_FLAG_IGNORECASE,
              regex.MULTILINE: sre_c.SRE_FLAG_MULTILINE,
              regex.DOTALL: sre_c.SRE_FLAG_DOTALL, regex.VERBOSE: sre_c.SRE_FLAG_VERBOSE,
              regex.ASCII: sre_c.SRE_FLAG_ASCII}
_CATEGORIES = {sre_c.CATEGORY_DIGIT: r"\d", sre_c.CATEGORY_NOT_DIGIT: r"\D",
               sre_c.CATEGORY_SPACE: r"\s", sre_c.CATEGORY_NOT_SPACE: r"\S",
               sre_c.CATEGORY_WORD: r"\w", sre_c.CATEGORY_NOT_WORD: r"\W"}
_REPEATS = (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT)
_DROPPED = (sre_c.AT, sre_c.ASSERT, sre_c.ASSERT_NOT)
_UNBOUNDED = sre_c.MAXREPEAT
#: letters with a non-ASCII case partner under (?i), both cases
_CASE_PARTNERED = frozenset(ord(c) for c in CASELESS_UNSAFE | {c.upper() for c in CASELESS_UNSAFE})


class Unsupported(Exception):
    """The pattern uses something the translation does not model."""


#: one character's worth of bytes: its ASCII members, and whether it may be non-ASCII
CharSet = tuple[frozenset[int], bool]


def superset(pattern: regex.Pattern[str]) -> bytes | None:
    """A Hyperscan expression matching, within a line's bytes, wherever ``pattern`` can match.

    ``None`` if the pattern is not covered (see the module docstring).
    """
    if pattern.flags & ~_MODELLED:
        return None
    flags = sum(sre for flag, sre in _SRE_FLAGS.items() if pattern.flags & flag)
    tree = parse(pattern.pattern)  # usually the flags are inline: the parse others made
    if tree is not None and tree.state.flags & flags != flags:
        tree = parse(pattern.pattern, flags)
    if tree is None:
        return None
    try:
        body = _Translate(tree.state.flags).core(list(tree))
    except (regex.error, RecursionError, OverflowError, ValueError, Unsupported):
        return None
    if body is None:
        # nothing on a line can match: let the literal path say so, it is rare
        return None
    return b"(?:" + body + rb")[^\n]*$"


class _Translate:
    """The byte-level superset of parsed nodes, under the flags in force."""

    def __init__(self, flags: int) -> None:
        self.caseless = bool(flags & sre_c.SRE_FLAG_IGNORECASE)
        self.ascii = bool(flags & sre_c.SRE_FLAG_ASCII)

    def core(self, items: list[tuple[Any, Any]]) -> bytes | None:
        """A superset of a whole match: its middle, from the first rare literal to the last literal.

        A match of ``a b c`` contains a match of ``b``, so leading nodes without
        a rare literal (``^``, ``\\S+``, ``(?:x)?``, ``: .*?``...) and trailing
        ones without a literal (``.*$``) can go: Hyperscan is fast at finding
        rare literals and slow at running classes from every common one. A
        pattern that is one group or alternation gets the same per
        alternative.
        """
        units = _units(items)
        weights = [strength(items[start:end], self.caseless) for start, end in units]
        # start at a rare literal (after a common one, ": .*?", Hyperscan would try from each);
        # end at the last literal of any kind (the parts after one are tried only after it)
        first = next((u for u, w in zip(units, weights, strict=True) if w >= MIN_SELECTIVITY),
                     next((u for u, w in zip(units, weights, strict=True) if w), None))
        last = next((u for u, w in zip(reversed(units), reversed(weights), strict=True) if w), None)
        if first is not None and last is not None:
            items = items[first[0]: last[1]]
        if len(items) == 1:
            op, av = items[0]
            if op is sre_c.BRANCH:
                return _alternation([self.core(list(alt)) for alt in av[1]])
            if (op is sre_c.SUBPATTERN and not av[1] | av[2]) or op is sre_c.ATOMIC_GROUP:
                return self.core(list(av[-1] if op is sre_c.SUBPATTERN else av))
        return self.sequence(items)

    def sequence(self, items: Any) -> bytes | None:
        """Concatenation: ``None`` (matches nothing) if any part matches nothing."""
        out: list[bytes] = []
        for op, av in items:
            part = self.node(op, av)
            if part is None:
                return None
            if part != ANY_TEXT or not out or out[-1] != ANY_TEXT:
                out.append(part)
        return b"".join(out)

    def node(self, op: Any, av: Any) -> bytes | None:
        chars = self.chars(op, av)
        if chars is not None:
            return _one_char(chars)
        if _unbounded(op, av) and not strength([(op, av)], self.caseless):
            # no literal to find and no end: "any text" costs Hyperscan far less than
            # the classes (an IP address, a user name) and selects nearly the same lines
            return ANY_TEXT
        if op in _DROPPED:
            return b""
        if op is sre_c.SUBPATTERN:
            return self.group(av)
        if op is sre_c.ATOMIC_GROUP:
            return _group(self.sequence(av))
        if op is sre_c.BRANCH:
            return _alternation([self.sequence(alt) for alt in av[1]])
        if op in _REPEATS:
            return self.repeat(*av)
        if op is sre_c.GROUPREF:
            return ANY_TEXT
        if op is sre_c.GROUPREF_EXISTS:
            _, yes, no = av
            return _alternation([self.sequence(yes), self.sequence(no) if no else b""])
        raise Unsupported(str(op))

    def chars(self, op: Any, av: Any) -> CharSet | None:
        """The bytes of a node that matches exactly one character, or ``None`` for other nodes."""
        if op is sre_c.LITERAL:
            return _literal(av, self.caseless)
        if op is sre_c.NOT_LITERAL:
            return _class(((sre_c.NEGATE, None), (sre_c.LITERAL, av)), self.caseless, self.ascii)
        if op is sre_c.IN:
            return _class(tuple(av), self.caseless, self.ascii)
        if op is sre_c.ANY:
            return ASCII, True
        return None

    def group(self, av: Any) -> bytes | None:
        _, add, remove, body = av
        outer = self.caseless
        if add & sre_c.SRE_FLAG_IGNORECASE:
            self.caseless = True
        if remove & sre_c.SRE_FLAG_IGNORECASE:
            self.caseless = False
        try:
            return _group(self.sequence(body))
        finally:
            self.caseless = outer

    def repeat(self, low: int, high: int, body: Any) -> bytes | None:
        bounds = _bounds(low, high)
        if len(body) == 1 and (chars := self.chars(*body[0])) is not None:
            members, non_ascii = chars
            if non_ascii:
                # each character is 1 to 4 bytes: a run of such bytes covers any repeat of them
                members |= NON_ASCII
                bounds = _bounds(low, high if high == _UNBOUNDED else 4 * high)
            if not members:
                return b"" if low == 0 else None
            return _byte_class(members) + bounds
        inner = self.sequence(body)
        if inner is None:
            return b"" if low == 0 else None
        return b"(?:" + inner + b")" + bounds


def _units(items: Sequence[tuple[Any, Any]]) -> list[tuple[int, int]]:
    """``(start, end)`` of each node of ``items``, a run of literal characters being one."""
    units: list[tuple[int, int]] = []
    for i, (op, _) in enumerate(items):
        if op is sre_c.LITERAL and units and units[-1][1] == i and items[i - 1][0] is sre_c.LITERAL:
            units[-1] = (units[-1][0], i + 1)
        else:
            units.append((i, i + 1))
    return units


def _unbounded(op: Any, av: Any) -> bool:
    """Whether the node can match text of any length."""
    if op in _REPEATS:
        return av[1] == _UNBOUNDED or any(_unbounded(*node) for node in av[2])
    if op is sre_c.SUBPATTERN:
        return any(_unbounded(*node) for node in av[3])
    if op is sre_c.ATOMIC_GROUP:
        return any(_unbounded(*node) for node in av)
    if op is sre_c.BRANCH:
        return any(_unbounded(*node) for alt in av[1] for node in alt)
    return op is sre_c.GROUPREF or op is sre_c.GROUPREF_EXISTS


def _bounds(low: int, high: int) -> bytes:
    if high == _UNBOUNDED:
        return b"{%d,}" % low
    return b"{%d,%d}" % (low, high)


def _group(inner: bytes | None) -> bytes | None:
    return None if inner is None else b"(?:" + inner + b")"


def _alternation(alternatives: Sequence[bytes | None]) -> bytes | None:
    """The alternatives that can match something; ``None`` if none can."""
    possible = [alt for alt in alternatives if alt is not None]
    if not possible:
        return None
    return b"(?:" + b"|".join(possible) + b")"


def _one_char(chars: CharSet) -> bytes | None:
    members, non_ascii = chars
    if not non_ascii:
        return _byte_class(members) if members else None
    if not members:
        return NON_ASCII_CHAR
    return b"(?:" + _byte_class(members) + b"|" + NON_ASCII_CHAR + b")"


def _byte_class(members: frozenset[int]) -> bytes:
    """``members`` as one Hyperscan class (or a single escaped byte)."""
    ranges: list[bytes] = []
    values = sorted(members)
    start = prev = values[0]
    for value in [*values[1:], -1]:
        if value == prev + 1:
            prev = value
            continue
        ranges.append(b"\\x%02x" % start if start == prev else b"\\x%02x-\\x%02x" % (start, prev))
        start = prev = value
    if len(ranges) == 1 and len(members) == 1:
        return ranges[0]
    return b"[" + b"".join(ranges) + b"]"


def _literal(code: int, caseless: bool) -> CharSet:
    """The bytes of one literal character."""
    if code < 0x80 and not caseless:
        return (frozenset({code}) - {NEWLINE}), False
    if code < 0x80:
        # under (?i) an ASCII letter is itself and its other case (and i, k, s more)
        members = frozenset({ord(chr(code).lower()), ord(chr(code).upper())}) - {NEWLINE}
        return members, bool(members & _CASE_PARTNERED)
    return _class(((sre_c.LITERAL, code),), caseless, ascii_only=False)


@cache
def _class(items: tuple[tuple[Any, Any], ...], caseless: bool, ascii_only: bool) -> CharSet:
    """The bytes of a character class, asking the ``regex`` engine about each ASCII character."""
    parts, negated, non_ascii = [], False, False
    for op, av in items:
        if op is sre_c.NEGATE:
            negated = non_ascii = True
        elif op is sre_c.LITERAL:
            parts.append(f"\\U{av:08x}")
            non_ascii |= av >= 0x80
        elif op is sre_c.RANGE:
            parts.append(f"\\U{av[0]:08x}-\\U{av[1]:08x}")
            non_ascii |= av[1] >= 0x80
        elif op is sre_c.CATEGORY and av in _CATEGORIES:
            parts.append(_CATEGORIES[av])
            non_ascii = True
        else:
            raise Unsupported(str(op))
    flags = regex.VERSION0 | (regex.IGNORECASE if caseless else 0)
    flags |= regex.ASCII if ascii_only else 0
    test = regex.compile("[" + ("^" if negated else "") + "".join(parts) + "]", flags)
    members = frozenset(code for code in ASCII if test.fullmatch(chr(code)))
    # under (?i), an ASCII member reaches a non-ASCII character only through i, k or s
    return members, non_ascii or (caseless and bool(members & _CASE_PARTNERED))


def _flags(hyperscan: Any) -> int:
    return int(hyperscan.HS_FLAG_MULTILINE | hyperscan.HS_FLAG_PREFILTER)


class LineFilter:
    """Hyperscan running every covered pattern's superset over a chunk."""

    name = "hyperscan"

    def __init__(self, expressions: dict[int, bytes]) -> None:
        import hyperscan  # optional: imported only where installed

        self._hs = hyperscan
        name = hscache.key(hyperscan, expressions, _flags(hyperscan))
        cached = hscache.load(hyperscan, name)
        if cached is not None:
            self._db, covered = cached
        else:
            self._db, covered = self._build(expressions)
            hscache.save(hyperscan, name, self._db, covered)
        #: the indexes of the patterns covered, in database id order
        self.covered = tuple(covered)

    def _build(self, expressions: dict[int, bytes]) -> tuple[Any, list[int]]:
        db = self._hs.Database(mode=self._hs.HS_MODE_BLOCK)
        try:
            self._compile(db, list(expressions.values()))
        except self._hs.error:
            expressions = self._compilable(expressions)
            if expressions:
                self._compile(db, list(expressions.values()))
        return db, list(expressions)

    def _compile(self, db: Any, expressions: list[bytes]) -> None:
        flags = _flags(self._hs)
        db.compile(expressions=expressions, ids=list(range(len(expressions))),
                   elements=len(expressions), flags=[flags] * len(expressions))

    def _compilable(self, expressions: dict[int, bytes]) -> dict[int, bytes]:
        """The expressions Hyperscan accepts, tried one at a time."""
        kept = {}
        for index, expression in expressions.items():
            try:
                self._compile(self._hs.Database(mode=self._hs.HS_MODE_BLOCK), [expression])
            except self._hs.error as exc:
                log.debug("line filter: pattern %d left to the literal prefilter: %s", index, exc)
            else:
                kept[index] = expression
        return kept

    def lines(self, data: bytes) -> list[int]:
        """``line_end * n + k`` for each line of ``data`` the ``k``-th covered pattern may match.

        ``n`` is ``len(self.covered)``; sorting the result orders it by line, then pattern.
        """
        if not self.covered:
            return []  # an empty database cannot scan
        out: list[int] = []
        append, n = out.append, len(self.covered)

        def on_match(index: int, start: int, end: int, flags: int, context: object) -> None:
            append(end * n + index)

        self._db.scan(data, match_event_handler=on_match)
        return out


def make_line_filter(patterns: Sequence[regex.Pattern[str]],
                     prefer: str | None = None) -> LineFilter | None:
    """A :class:`LineFilter` for the patterns it covers, or ``None`` without Hyperscan.

    ``prefer`` (default: ``LOGWATCH_SCANNER``) set to ``"python"`` turns it off.
    """
    prefer = prefer or os.environ.get("LOGWATCH_SCANNER") or None
    if prefer not in (None, "hyperscan"):
        return None
    expressions = {i: e for i, p in enumerate(patterns) if (e := superset(p)) is not None}
    if not expressions:
        return None
    try:
        return LineFilter(expressions)
    except ImportError:
        return None
