"""The line filter: each whole pattern, loosened or exact, run by Hyperscan over a chunk's bytes.

The literal prefilter (:mod:`logwatch.matching.literals`) keeps a line if it contains one
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

On a line of ASCII bytes the translation can also be *exact* (:func:`exact`):
every character is one byte, so a class is just its ASCII members; ``^``, ``$``,
``\\A``, ``\\Z``, ``\\b`` and ``\\B`` mean on a line what they mean to Hyperscan
under ``MULTILINE``; and lazy or greedy repeats match the same lines. What
Hyperscan cannot do as the ``regex`` engine does is refused: lookarounds,
backreferences, conditionals, atomic groups, possessive repeats, an anchor
inside the pattern; so are nested repeats (the ``regex`` engine must run them,
for its timeout) and text of any length before the first rare literal (slow in
Hyperscan). :class:`LineFilter` keeps a second database for all-ASCII chunks,
exact where it can be.

Where it cannot, that database runs the *tight* translation (:func:`tight`) if
there is one: the exact one with what it refuses loosened as above (lookarounds
and inner anchors dropped...), still a superset, so the ``regex`` engine
confirms its lines. On logs where the pattern's literals are common (``sshd[``,
``pam_unix(``, ``postfix/``), Hyperscan runs it for much less than the loosened
one, whose gaps of "any text" it must follow to each line's end: with the
default packs' 50 rules on the benchmark's log, about 30% less scanning time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re._constants as sre_c  # type: ignore[import-not-found]  # no stubs for the stdlib parser
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache, cached_property, lru_cache
from pathlib import Path
from typing import Any, TypeVar, cast

import regex

import logwatch.matching.engine as engine
import logwatch.matching.hyperscan_cache
import logwatch.matching.literals
from logwatch.matching.literals import CASELESS_UNSAFE, MIN_SELECTIVITY, parse, strength

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
#: what Hyperscan cannot run as the regex engine does: lookarounds, atomic and possessive
#: (they can make a match fail), references to what a group matched
_INEXACT = (sre_c.ASSERT, sre_c.ASSERT_NOT, sre_c.ATOMIC_GROUP, sre_c.POSSESSIVE_REPEAT,
            sre_c.GROUPREF, sre_c.GROUPREF_EXISTS)
#: anchors on a line (its text has no "\n"), as Hyperscan says them under HS_FLAG_MULTILINE
_ANCHORS = {sre_c.AT_BEGINNING: b"^", sre_c.AT_BEGINNING_STRING: b"^",
            sre_c.AT_END: b"$", sre_c.AT_END_STRING: b"$",
            sre_c.AT_BOUNDARY: rb"\b", sre_c.AT_NON_BOUNDARY: rb"\B"}
_UNBOUNDED = sre_c.MAXREPEAT
#: letters with a non-ASCII case partner under (?i), both cases
_CASE_PARTNERED = frozenset(ord(c) for c in CASELESS_UNSAFE | {c.upper() for c in CASELESS_UNSAFE})


class Unsupported(Exception):
    """The pattern uses something the translation does not model."""


#: one character's worth of bytes: its ASCII members, and whether it may be non-ASCII
CharSet = tuple[frozenset[int], bool]


@lru_cache(maxsize=4096)
def superset(pattern: regex.Pattern[str]) -> bytes | None:
    """A Hyperscan expression matching, within a line's bytes, wherever ``pattern`` can match.

    ``None`` if the pattern is not covered (see the module docstring).
    """
    return _REMEMBERED.get("superset", pattern, lambda: _translated(pattern, exact=False))


@lru_cache(maxsize=4096)
def tight(pattern: regex.Pattern[str]) -> bytes | None:
    """A superset of ``pattern`` on ASCII lines, closer than :func:`superset`: the exact
    translation with what it refuses loosened (lookarounds and inner anchors dropped,
    atomic groups and possessive repeats made plain, a backreference any text).

    ``None`` where the exact translation would be slow (text of any length before the
    first rare literal) or fails otherwise. Hyperscan runs such an expression for far less
    than the loosened one when the pattern's literals are common in the logs (``sshd[``,
    ``pam_unix(``): it checks the whole pattern, not just its literals.
    """
    return _REMEMBERED.get("tight", pattern,
                           lambda: _translated(pattern, exact=True, tight=True))


@lru_cache(maxsize=4096)
def vetoes(pattern: regex.Pattern[str]) -> tuple[bytes, ...] | None:
    """Expressions that make :func:`tight` exact where none of them matches, or ``None``.

    When all the tight translation dropped were negative lookarounds (``(?!X)``,
    ``(?<!X)``), on an ASCII line where no ``X`` occurs at all each of them holds
    wherever it is tried: there the pattern matches exactly when the tight
    expression does. These are the bodies ``X``, translated as :func:`tight` translates
    (a superset of where they occur), each reported at its line's end. ``None`` too when
    a body has no rare literal: it would be reported on most lines, and cost more than
    the searches it spares.
    """
    return _REMEMBERED.get("vetoes", pattern, lambda: _vetoes(pattern))


def _vetoes(pattern: regex.Pattern[str]) -> tuple[bytes, ...] | None:
    tree = _tree(pattern)
    if tree is None:
        return None
    translate = _Translate(tree.state.flags, exact=True, tight=True)
    if (_attempt(translate.to_line_end, list(tree)) is None or translate.loosened
            or translate.common_veto):
        return None
    return tuple(translate.vetoes)


@lru_cache(maxsize=4096)
def exact(pattern: regex.Pattern[str]) -> bytes | None:
    """A Hyperscan expression matching an ASCII line exactly when ``pattern`` matches it.

    ``None`` if the pattern has something Hyperscan cannot run as the ``regex``
    engine does (see the module docstring).
    """
    return _REMEMBERED.get("exact", pattern, lambda: _translated(pattern, exact=True))


def plain_literal(pattern: regex.Pattern[str]) -> bytes | None:
    """The bytes of ``pattern`` if it is just ASCII text (case-sensitive, no syntax), else None.

    A line's text contains it exactly when the line's bytes do (see the module docstring).
    """
    if pattern.flags & ~(regex.UNICODE | regex.VERSION0 | regex.VERBOSE):
        return None
    tree = parse(pattern.pattern)
    if tree is None or tree.state.flags & sre_c.SRE_FLAG_IGNORECASE or not list(tree):
        return None
    if not all(op is sre_c.LITERAL and av < 0x80 and av != NEWLINE for op, av in tree):
        return None
    return bytes(av for _, av in tree)


@lru_cache(maxsize=4096)
def exact_alternatives(pattern: regex.Pattern[str]) -> tuple[bytes, ...]:
    """The exact expressions of those alternatives of ``pattern`` (``a|b|c``) that have one.

    A line one of them matches, the pattern matches: for a pattern that has no
    exact expression as a whole (a lookaround in one alternative), these still
    spare the ``regex`` engine most lines.
    """
    return _REMEMBERED.get("alternatives", pattern, lambda: _exact_alternatives(pattern))


def _exact_alternatives(pattern: regex.Pattern[str]) -> tuple[bytes, ...]:
    tree = _tree(pattern)
    items = list(tree) if tree is not None else []
    if len(items) != 1 or items[0][0] is not sre_c.BRANCH:
        return ()
    found = (_attempt(_Translate(tree.state.flags, exact=True).to_line_end, list(alt))
             for alt in items[0][1][1])
    return tuple(e for e in found if e is not None)


class _Remembered:
    """The translations kept on disk between runs
    (:func:`logwatch.matching.hyperscan_cache.load_translations`): a start with rules seen
    before translates nothing."""

    #: at most this many kept; beyond, only those this process asked for are saved
    LIMIT = 4096

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._entries: dict[str, Any] = {}
        self._used: set[str] = set()
        self._dirty = False

    @cached_property
    def name(self) -> str:
        """The file name: a hash of the code that translates, so no other version reads it."""
        digest = hashlib.sha256(b"%s\n%s\n" % (sys.version.encode(),
                                                 str(regex.__version__).encode()))
        for module in (sys.modules[__name__], logwatch.matching.literals):
            digest.update(Path(module.__file__ or "").read_bytes())
        return f"translations-{digest.hexdigest()[:32]}.json"

    def get(self, kind: str, pattern: regex.Pattern[str], compute: Callable[[], _T]) -> _T:
        """``kind`` of ``pattern``: as saved, or computed (and saved at :meth:`save`)."""
        key = f"{kind} {int(pattern.flags)} {pattern.pattern}"
        try:
            entries = self._load()
        except OSError:  # no source to hash (a frozen build?): translate every time
            return compute()
        self._used.add(key)
        if key in entries:
            try:
                return cast("_T", _decode(entries[key], many=kind in _MANY))
            except (TypeError, ValueError):
                pass  # damaged: translate again
        value = compute()
        entries[key] = _encode(value)
        self._dirty = True
        return value

    def save(self) -> None:
        """Write what was translated since the last save (best effort)."""
        if not self._dirty:
            return
        if len(self._entries) > self.LIMIT:
            self._entries = {k: v for k, v in self._entries.items() if k in self._used}
        logwatch.matching.hyperscan_cache.save_translations(self.name, self._entries)
        self._dirty = False

    def _load(self) -> dict[str, Any]:
        directory = logwatch.matching.hyperscan_cache.cache_dir()
        if directory != self._dir:
            self._entries = logwatch.matching.hyperscan_cache.load_translations(self.name)
            self._dir, self._used, self._dirty = directory, set(), False
        return self._entries


def _encode(value: bytes | tuple[bytes, ...] | None) -> str | list[str] | None:
    if isinstance(value, tuple):
        return [v.decode("latin-1") for v in value]
    return None if value is None else value.decode("latin-1")


def _decode(value: Any, many: bool) -> bytes | tuple[bytes, ...] | None:
    """A saved translation: an expression (``many``: a tuple of them) or None; TypeError if
    the saved value is not of that shape."""
    if value is None:
        return None
    if isinstance(value, str) and not many:
        return value.encode("latin-1")
    if isinstance(value, list) and many and all(isinstance(v, str) for v in value):
        return tuple(v.encode("latin-1") for v in value)
    raise TypeError(type(value).__name__)


#: the kinds of translation that are a tuple of expressions
_MANY = frozenset({"alternatives", "vetoes"})
_T = TypeVar("_T", bound=bytes | tuple[bytes, ...] | None)


_REMEMBERED = _Remembered()


def _translated(pattern: regex.Pattern[str], exact: bool, tight: bool = False) -> bytes | None:
    tree = _tree(pattern)
    if tree is None:
        return None
    # None: nothing on a line can match; the literal path says so, it is rare
    translate = _Translate(tree.state.flags, exact, tight)
    if exact:
        return _attempt(translate.to_line_end, list(tree))
    return _attempt(lambda items: _to_line_end(translate.core(items)), list(tree))


def _tree(pattern: regex.Pattern[str]) -> Any:
    """The stdlib parse of ``pattern`` under its flags, or ``None`` if not modelled."""
    if pattern.flags & ~_MODELLED:
        return None
    flags = sum(sre for flag, sre in _SRE_FLAGS.items() if pattern.flags & flag)
    tree = parse(pattern.pattern)  # usually the flags are inline: the parse others made
    if tree is not None and tree.state.flags & flags != flags:
        tree = parse(pattern.pattern, flags)
    return tree


def _attempt(translate: Callable[[list[tuple[Any, Any]]], bytes | None],
             items: list[tuple[Any, Any]]) -> bytes | None:
    """A translation, or ``None`` where the pattern has something it does not model."""
    try:
        return translate(items)
    except (regex.error, RecursionError, OverflowError, ValueError, Unsupported):
        return None


def _to_line_end(body: bytes | None) -> bytes | None:
    """``body`` and the rest of its line: Hyperscan reports each line once, at its end."""
    return None if body is None else b"(?:" + body + rb")[^\n]*$"


class _Translate:
    """The byte-level superset of parsed nodes, under the flags in force."""

    def __init__(self, flags: int, exact: bool = False, tight: bool = False) -> None:
        self.caseless = bool(flags & sre_c.SRE_FLAG_IGNORECASE)
        self.ascii = bool(flags & sre_c.SRE_FLAG_ASCII)
        #: translate exactly, for ASCII lines, or refuse (raise Unsupported)
        self.exact = exact
        #: with ``exact``: loosen what cannot be exact instead of refusing it (see tight())
        self.tight = tight
        #: tight: the negative lookarounds' bodies (each to its line's end), and whether
        #: anything else was loosened (see vetoes())
        self.vetoes: list[bytes] = []
        self.loosened = False
        #: a body without a rare literal (see vetoes())
        self.common_veto = False
        self._in_body = False

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

    def to_line_end(self, items: list[tuple[Any, Any]]) -> bytes | None:
        """A whole pattern, exactly, extended to the end of the line; each alternative apart.

        Hyperscan takes ``^`` only first and ``$`` only last: an alternative
        that ends with ``$`` is not extended (it ends there already), and an
        anchor anywhere else is refused.
        """
        if len(items) == 1 and items[0][0] is sre_c.BRANCH:
            return _alternation([self.to_line_end(list(alt)) for alt in items[0][1][1]])
        if _slow_start(items, self.caseless):
            raise Unsupported("no rare literal before text of any length")
        head = b"^" if items and _anchor(items[0]) == b"^" else b""
        items = items[1:] if head else items
        tail = rb"[^\n]*$"
        if items and _anchor(items[-1]) == b"$":
            items, tail = items[:-1], b"$"
        body = self.sequence(items)
        return None if body is None else head + b"(?:" + body + b")" + tail

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
        if self.exact:
            return self.exact_node(op, av)
        if _unbounded(op, av) and not strength([(op, av)], self.caseless):
            # no literal to find and no end: "any text" costs Hyperscan far less than
            # the classes (an IP address, a user name) and selects nearly the same lines
            return ANY_TEXT
        if op in _DROPPED:
            return b""
        return self.structure(op, av)

    def exact_node(self, op: Any, av: Any) -> bytes | None:
        """A node translated exactly; what Hyperscan cannot do as ``regex`` does, refused."""
        if op is sre_c.AT:
            if _anchor((op, av)) in (rb"\b", rb"\B"):
                return _anchor((op, av))
            if self.tight:
                self.loosened |= not self._in_body
                return b""  # no constraint is a weaker constraint
            raise Unsupported(f"{av} inside the pattern")  # see to_line_end
        if self.tight:
            return self.tight_node(op, av)
        if op in _INEXACT:
            raise Unsupported(str(op))
        if op in _REPEATS and av[1] == _UNBOUNDED and _nested(av[2]):
            # (a|aa)+ or (\w+\s?)+ may backtrack for ages: the regex engine must run it,
            # so that its timeout stops it and says so
            raise Unsupported("nested repeat")
        return self.structure(op, av)

    def tight_node(self, op: Any, av: Any) -> bytes | None:
        """What :meth:`exact_node` refuses, loosened as in the loosened translation; a
        negative lookaround's body is noted (:attr:`vetoes`), anything else loosened says so
        (:attr:`loosened`). Nested repeats are kept: Hyperscan does not backtrack, and the
        regex engine confirms each line (with its timeout)."""
        if self._in_body:  # a superset of where the body occurs is all a veto needs
            return b"" if op in (sre_c.ASSERT, sre_c.ASSERT_NOT) else self.structure(op, av)
        if op is sre_c.ASSERT_NOT:
            # on a line where its body occurs nowhere, (?!X) and (?<!X) always hold
            with self.scoped():
                self._in_body = True
                body = self.sequence(av[1])
            if body is not None:
                self.vetoes.append(_to_line_end(body) or b"")
                # (?!3:|14:) occurs on nearly every line (a time of day): Hyperscan would
                # report it on each, for nothing
                self.common_veto |= strength(list(av[1]), self.caseless) < MIN_SELECTIVITY
            return b""
        if op in _INEXACT or (op in _REPEATS and av[1] == _UNBOUNDED and _nested(av[2])):
            self.loosened = True
        return b"" if op is sre_c.ASSERT else self.structure(op, av)

    @contextmanager
    def scoped(self) -> Iterator[None]:
        """A part translated apart (a lookaround's body): the flags in force, restored after."""
        caseless, in_body = self.caseless, self._in_body
        try:
            yield
        finally:
            self.caseless, self._in_body = caseless, in_body

    def structure(self, op: Any, av: Any) -> bytes | None:
        """Groups, alternations, repeats and references: their parts translated."""
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
        """The bytes of a node that matches exactly one character, or ``None`` for other nodes.

        Translating exactly, for ASCII lines, only the ASCII members count.
        """
        if op is sre_c.LITERAL:
            chars = _literal(av, self.caseless)
        elif op is sre_c.NOT_LITERAL:
            chars = _class(((sre_c.NEGATE, None), (sre_c.LITERAL, av)), self.caseless, self.ascii)
        elif op is sre_c.IN:
            chars = _class(tuple(av), self.caseless, self.ascii)
        elif op is sre_c.ANY:
            chars = ASCII, True
        else:
            return None
        return (chars[0], False) if self.exact else chars

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


def _children(op: Any, av: Any) -> Iterator[tuple[Any, Any]]:
    """The parsed nodes right inside a repeat, a group or an alternation."""
    if op in _REPEATS:
        yield from av[2]
    elif op is sre_c.SUBPATTERN:
        yield from av[3]
    elif op is sre_c.ATOMIC_GROUP:
        yield from av
    elif op is sre_c.BRANCH:
        for alternative in av[1]:
            yield from alternative


def _unbounded(op: Any, av: Any) -> bool:
    """Whether the node can match text of any length."""
    if (op in _REPEATS and av[1] == _UNBOUNDED) or op in (sre_c.GROUPREF, sre_c.GROUPREF_EXISTS):
        return True
    return any(_unbounded(*node) for node in _children(op, av))


def _anchor(node: tuple[Any, Any]) -> bytes | None:
    """The Hyperscan anchor a parsed node is, if it is one."""
    op, av = node
    return _ANCHORS.get(av) if op is sre_c.AT else None


def _slow_start(items: list[tuple[Any, Any]], caseless: bool) -> bool:
    """Whether text of any length (``.*?``, ``[^)]*``) comes before the first rare literal.

    Hyperscan then follows every partial match to the end of its line: on a
    common prefix (``sshd[123]: ``) that costs it ten times more than finding
    the literal. Such a pattern is left to the loosened expression.
    """
    for start, end in _units(items):
        if strength(items[start:end], caseless) >= MIN_SELECTIVITY:
            return False
        if any(_spans_words(*node) for node in items[start:end]):
            return True
    return False


def _spans_words(op: Any, av: Any) -> bool:
    """Whether a node repeats, without end, something that can match a space and a letter."""
    if op in _REPEATS and len(av[2]) == 1:
        chars = _Translate(0, exact=True).chars(*av[2][0])
        if chars is not None:
            return av[1] == _UNBOUNDED and {0x20, ord("a")} <= chars[0]
    return any(_spans_words(*node) for node in _children(op, av))


def _nested(items: Iterable[tuple[Any, Any]]) -> bool:
    """Whether parsed nodes hold a repeat or an alternation (inside a repeat: backtracking)."""
    return any(op in _REPEATS or op is sre_c.BRANCH or _nested(_children(op, av))
               for op, av in items)


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


@cache
def _one_char(chars: CharSet) -> bytes | None:
    members, non_ascii = chars
    if not non_ascii:
        return _byte_class(members) if members else None
    if not members:
        return NON_ASCII_CHAR
    return b"(?:" + _byte_class(members) + b"|" + NON_ASCII_CHAR + b")"


@cache
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


#: a Hyperscan expression and its flags
Expression = tuple[bytes, int]


class LineFilter:
    """Hyperscan running every covered pattern over a chunk, in one scan.

    Two databases: the loosened expressions (:func:`superset`), for any chunk,
    and for an all-ASCII chunk (nearly every chunk of a system log) the exact
    expressions (:func:`exact`) where a pattern has one, else the tight one
    (:func:`tight`, ``tight``), else the loosened one. Patterns given as
    ``exact_only`` (a rule's ``ignore``) are only in the second, and only when exact.
    """

    name = "hyperscan"

    def __init__(self, loose: dict[int, bytes], exact: dict[int, bytes], count: int,
                 tight: dict[int, bytes] | None = None) -> None:
        import hyperscan  # optional: imported only where installed

        self._hs = hyperscan
        #: keys are ``line_end * count + pattern index``
        self.count = count
        prefilter = int(hyperscan.HS_FLAG_MULTILINE | hyperscan.HS_FLAG_PREFILTER)
        precise = int(hyperscan.HS_FLAG_MULTILINE)
        self._loose, chosen = self._database({i: [(e, prefilter)] for i, e in loose.items()})
        #: the indexes of the patterns covered (any chunk), in order
        self.covered = tuple(sorted(chosen))
        # an index not loosened either is an exact_only one
        options: dict[int, list[Expression]] = {
            i: [(e, precise)] for i, e in exact.items() if i in chosen or i not in loose}
        for i, e in (tight or {}).items():
            if i in chosen and i not in options:
                options[i] = [(e, precise)]  # a superset, as the loosened one: not exact
        for i in self.covered:
            options.setdefault(i, []).append((loose[i], prefilter))
        self._ascii, chosen = self._database(options)
        #: the indexes whose reports, on an all-ASCII chunk, are exactly the pattern's matches
        self.exact = frozenset(i for i, c in chosen.items() if c == 0 and i in exact)
        #: the indexes for which that database runs the tight expression
        self.tight = frozenset(i for i, c in chosen.items()
                               if c == 0 and i in (tight or {}) and i not in exact)
        if not set(self.covered) <= set(chosen):  # refused together: the loosened ones for all
            self._ascii, self.exact, self.tight = self._loose, frozenset(), frozenset()

    def _database(self, options: dict[int, list[Expression]]) -> tuple[Any, dict[int, int]]:
        """A database of one expression per index (the first of its options that Hyperscan
        accepts), from the cache or compiled; and which option each index got."""
        name = logwatch.matching.hyperscan_cache.key(self._hs, options)
        cached = logwatch.matching.hyperscan_cache.load(self._hs, name)
        if cached is not None:
            return cached
        chosen = dict.fromkeys(options, 0)
        try:
            db = self._compile(options, chosen)
        except self._hs.error:
            chosen = self._compilable(options)
            try:
                db = self._compile(options, chosen) if chosen else None
            except self._hs.error as exc:  # each alone, not together (too large?): none
                log.warning("line filter: Hyperscan refused the expressions together (%s); "
                            "matching without it, more slowly", exc)
                return None, {}
        if db is not None:
            logwatch.matching.hyperscan_cache.save(self._hs, name, db, chosen)
        return db, chosen

    def _compile(self, options: dict[int, list[Expression]], chosen: dict[int, int]) -> Any:
        db = self._hs.Database(mode=self._hs.HS_MODE_BLOCK)
        picked = [options[i][choice] for i, choice in chosen.items()]
        db.compile(expressions=[e for e, _ in picked], ids=list(chosen), elements=len(picked),
                   flags=[f for _, f in picked])
        return db

    def _compilable(self, options: dict[int, list[Expression]]) -> dict[int, int]:
        """Per index, the first option Hyperscan accepts alone (indexes with none left out)."""
        chosen = {}
        for index, choices in options.items():
            for choice in range(len(choices)):
                try:
                    self._compile(options, {index: choice})
                except self._hs.error as exc:
                    log.debug("line filter: pattern %d, expression %d refused: %s",
                              index, choice, exc)
                else:
                    chosen[index] = choice
                    break
        return chosen

    def lines(self, data: bytes, exact: bool = True) -> tuple[list[int], frozenset[int]]:
        """``line_end * count + index`` for each line of ``data`` the pattern ``index`` may
        match, and the indexes for which "may" is "does" (``exact``: where the chunk allows).

        Sorting the keys orders them by line, then pattern.
        """
        ascii_chunk = exact and data.isascii()
        db = self._ascii if ascii_chunk else self._loose
        if db is None:
            return [], frozenset()  # an empty database cannot scan
        out: list[int] = []
        append, n = out.append, self.count

        def on_match(index: int, start: int, end: int, flags: int, context: object) -> None:
            append(end * n + index)

        db.scan(data, match_event_handler=on_match)
        return out, self.exact if ascii_chunk else frozenset()


def make_line_filter(patterns: Sequence[regex.Pattern[str]], prefer: str | None = None,
                     exact_only: Sequence[bytes] = ()) -> LineFilter | None:
    """A :class:`LineFilter` for the patterns it covers, or ``None`` without Hyperscan.

    ``exact_only`` are exact expressions (an ``ignore`` pattern's, an alternative's)
    run on ASCII chunks only; their indexes continue from ``len(patterns)``.
    ``prefer`` (default: ``LOGWATCH_SCANNER``) set to ``"python"`` turns the filter off.
    """
    if not available(prefer):
        return None
    loose = {i: e for i, p in enumerate(patterns) if (e := superset(p)) is not None}
    if not loose:
        return None
    exacts = {i: e for i, p in enumerate(patterns) if (e := exact(p)) is not None}
    tights = {i: e for i, p in enumerate(patterns)
              if i not in exacts and i in loose and (e := tight(p)) is not None}
    exacts.update(enumerate(exact_only, len(patterns)))
    _REMEMBERED.save()
    return LineFilter(loose, exacts, len(patterns) + len(exact_only), tights)


def available(prefer: str | None = None) -> bool:
    """Whether a line filter can be had here (Hyperscan installed, not turned off), before
    translating anything for it. ``prefer``: as for :func:`make_line_filter`."""
    prefer = prefer or os.environ.get("LOGWATCH_SCANNER") or None
    return prefer in (None, "hyperscan") and engine.hyperscan_loads()
