"""The prefilter: literals every match must contain, and a scanner that finds them all at once.

A rule's pattern is parsed (with the standard library's regex parser, which reads
the syntax rule patterns use) and walked for runs of literal characters that
every match must contain. An alternation yields a *set* of literals, at least one
of which every match contains. Of all such sets, the most selective is kept.
Users never declare hints; a pattern the walk cannot use (regex-module-only
syntax, no literal run, an optional-only literal) gets ``None``: "always run".

Literals are matched against the raw bytes of a chunk, never the decoded text, so
only ASCII literals are kept: an ASCII byte in UTF-8 is always that character,
and Python's ``errors="replace"`` decoding never swallows an ASCII byte into a
replacement character. Case-insensitive literals are lower-cased and found
case-insensitively (ASCII only); the letters ``i``, ``k`` and ``s`` are cut out
of them because U+0130, U+212A (Kelvin) and U+017F (long s) match them under ``(?i)``.

:func:`make_scanner` returns the fastest available :class:`Scanner`: Hyperscan
(``pip install hyperscan``) when installed, else a pure-Python one built on
``bytes.find``. Both report exactly the same occurrences (a test checks it).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import re._constants as sre_c  # type: ignore[import-not-found]  # no stubs for the stdlib parser
import re._parser as sre_parse  # type: ignore[import-not-found]
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import regex

log = logging.getLogger(__name__)

#: letters that a non-ASCII character also matches under (?i) in the regex module
CASELESS_UNSAFE = frozenset("iks")
#: characters frequent in log lines: a literal made of them selects few lines
_COMMON = frozenset(" 0123456789:.-/[]=()_,'\"")
#: below this (about two rare characters), a literal set is not worth scanning for
MIN_SELECTIVITY = 2.0
_REPEATS = (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT)


@dataclass(frozen=True, slots=True, order=True)
class Literal:
    """A string a line must contain (ASCII; lower-case when ``caseless``)."""

    text: str
    caseless: bool = False

    def found_in(self, line: str) -> bool:
        """Whether ``line`` contains the literal."""
        return self.text in (line.lower() if self.caseless else line)


#: a set of literals at least one of which every match contains
LiteralSet = frozenset[Literal]


def required_literals(pattern: regex.Pattern[str] | str) -> LiteralSet | None:
    """The set of literals every match of ``pattern`` contains that looks most selective.

    ``None`` means the pattern has no usable literal and must run on every line.
    """
    return best_set(required_sets(pattern))


def required_sets(pattern: regex.Pattern[str] | str) -> list[LiteralSet]:
    """Every usable set of literals that every match of ``pattern`` contains.

    Each set is necessary on its own; which one selects the fewest lines depends
    on the logs (the matcher measures it). Empty when there is none.
    """
    if isinstance(pattern, regex.Pattern):
        if pattern.flags & (regex.VERSION1 | regex.FULLCASE | regex.REVERSE):
            return []  # other matching rules than the stdlib parser assumes
        text = pattern.pattern
        caseless = bool(pattern.flags & regex.IGNORECASE)
    else:
        text, caseless = pattern, False
    tree = parse(text)
    if tree is None:
        return []
    caseless = caseless or bool(tree.state.flags & sre_c.SRE_FLAG_IGNORECASE)
    sets = set(_Walk(caseless).sequence(tree))
    # a literal as common as one letter selects nearly every line: cheaper to just run
    return sorted((s for s in sets if selectivity(s) >= MIN_SELECTIVITY),
                  key=lambda s: (-selectivity(s), sorted(s)))


@functools.lru_cache(maxsize=1024)
def parse(text: str, flags: int = 0) -> Any:
    """The standard library's parse of a pattern, or ``None`` if it refuses or warns.

    Group names are made unique first (:func:`unique_group_names`). A warning
    ("possible nested set" and the like) marks syntax the stdlib parser and the
    ``regex`` module read differently, so it counts as a refusal. The tree is
    shared between callers (cached): read it, never change it.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            return sre_parse.parse(unique_group_names(text), flags)
    except (re.error, Warning, RecursionError, OverflowError, ValueError):
        return None


#: a named group, not escaped: ``(?P<name>`` or the regex module's ``(?<name>``
_GROUP_NAME = re.compile(r"(?<!\\)((?:\\\\)*)\(\?P?<(\w+)>")


def unique_group_names(text: str) -> str:
    """``text`` with each named group renamed apart.

    The regex module lets alternatives reuse a name (``(?P<ip>..)|(?P<ip>..)``);
    the stdlib parser refuses it. Names don't change which literals a match
    contains; a backreference to a renamed group fails to parse (no literal).
    """
    count = iter(range(1 << 30))
    return _GROUP_NAME.sub(lambda m: f"{m[1]}(?P<{m[2]}_{next(count)}>", text)


def best_set(sets: Iterable[LiteralSet]) -> LiteralSet | None:
    """The set that should select the fewest lines, or ``None`` if there is none."""
    return max(sets, key=selectivity, default=None)


def selectivity(literals: LiteralSet) -> float:
    """Higher is rarer: the weakest literal's weight, a little less for many alternatives."""
    weakest = min(sum(0.3 if c in _COMMON else 1.0 for c in lit.text) for lit in literals)
    return weakest - math.log2(len(literals))


def strength(items: Sequence[tuple[Any, Any]], caseless: bool) -> float:
    """The selectivity of the best literal set every match of parsed nodes contains (0: none)."""
    best = best_set(_Walk(caseless).sequence(items))
    return 0.0 if best is None else max(selectivity(best), 0.1)


class _Walk:
    """Collects the necessary literal sets of one sequence of parsed nodes."""

    def __init__(self, caseless: bool) -> None:
        self.caseless = caseless
        self.sets: list[LiteralSet] = []
        self.run: list[str] = []

    def sequence(self, items: Iterable[tuple[Any, Any]]) -> list[LiteralSet]:
        """The literal sets of a whole sequence."""
        self.splice(items)
        self.flush()
        return self.sets

    def splice(self, items: Iterable[tuple[Any, Any]]) -> None:
        for op, av in items:
            if op is sre_c.LITERAL:
                self.char(chr(av))
            elif op is sre_c.SUBPATTERN:
                self.group(av)
            elif op is sre_c.ATOMIC_GROUP:
                self.splice(av)  # matches what its body matches, contiguously
            elif op in _REPEATS:
                self.repeat(*av)
            elif op is sre_c.BRANCH:
                self.branch(av[1])
            else:
                # classes, anchors, lookarounds, backreferences: no literal, and a gap
                self.flush()

    def char(self, c: str) -> None:
        if not c.isascii():
            self.flush()
        elif not self.caseless:
            self.run.append(c)
        elif (low := c.lower()) in CASELESS_UNSAFE:
            self.flush()
        else:
            self.run.append(low)

    def group(self, av: tuple[Any, int, int, Any]) -> None:
        _, add, remove, body = av
        if not (add | remove) & sre_c.SRE_FLAG_IGNORECASE:
            self.splice(body)
            return
        self.flush()
        outer = self.caseless
        self.caseless = bool(add & sre_c.SRE_FLAG_IGNORECASE)
        self.splice(body)
        self.flush()
        self.caseless = outer

    def repeat(self, low: int, high: int, body: Any) -> None:
        self.flush()
        if low >= 1:
            self.sets.extend(_Walk(self.caseless).sequence(body))

    def branch(self, alternatives: Sequence[Any]) -> None:
        self.flush()
        union: set[Literal] = set()
        for alt in alternatives:
            best = best_set(_Walk(self.caseless).sequence(alt))
            if best is None:
                return  # one way to match without a literal: the branch gives nothing
            union |= best
        self.sets.append(frozenset(union))

    def flush(self) -> None:
        if self.run:
            self.sets.append(frozenset({Literal("".join(self.run), self.caseless)}))
            self.run = []


# ---------------------------------------------------------------------------
# Scanners: every occurrence of every literal in a chunk


class Scanner(Protocol):
    """Finds literals in bytes."""

    name: str

    def hits(self, data: bytes) -> list[tuple[int, int]]:
        """``(position, literal index)`` of every occurrence in ``data``, in any order.

        The position is anywhere inside the occurrence (the matcher only needs
        its line); every occurrence is reported, overlapping ones included.
        """
        ...


class FindScanner:
    """Pure Python: ``bytes.find`` for each literal (C speed per literal, no dependency)."""

    name = "python"

    def __init__(self, literals: Sequence[Literal]) -> None:
        self._exact: list[tuple[int, bytes]] = []
        self._caseless: list[tuple[int, re.Pattern[bytes]]] = []
        for index, lit in enumerate(literals):
            raw = lit.text.encode("ascii")
            if lit.caseless:
                self._caseless.append((index, re.compile(re.escape(raw), re.IGNORECASE)))
            else:
                self._exact.append((index, raw))

    def hits(self, data: bytes) -> list[tuple[int, int]]:
        """See :meth:`Scanner.hits`."""
        out: list[tuple[int, int]] = []
        append = out.append
        for index, raw in self._exact:
            find = data.find
            pos = find(raw)
            while pos >= 0:
                append((pos, index))
                pos = find(raw, pos + 1)
        for index, pattern in self._caseless:
            # overlapping occurrences need not be found: one per line is enough
            out.extend((m.start(), index) for m in pattern.finditer(data))
        return out


class HyperscanScanner:
    """Hyperscan's literal matcher (``pip install hyperscan``; x86-64 only)."""

    name = "hyperscan"

    def __init__(self, literals: Sequence[Literal]) -> None:
        import hyperscan  # optional: imported only where installed

        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        flags = [hyperscan.HS_FLAG_CASELESS if lit.caseless else 0 for lit in literals]
        self._db.compile(expressions=[lit.text.encode("ascii") for lit in literals],
                         ids=list(range(len(literals))), elements=len(literals),
                         flags=flags, literal=True)

    def hits(self, data: bytes) -> list[tuple[int, int]]:
        """See :meth:`Scanner.hits`."""
        out: list[tuple[int, int]] = []
        append = out.append

        def on_match(index: int, start: int, end: int, flags: int, context: object) -> None:
            append((end - 1, index))

        self._db.scan(data, match_event_handler=on_match)
        return out


class EmptyScanner:
    """No literals at all."""

    name = "none"

    def hits(self, data: bytes) -> list[tuple[int, int]]:
        """Nothing to find."""
        return []


#: compiled scanners, fastest first; each may be missing on this machine
COMPILED: dict[str, Callable[[Sequence[Literal]], Scanner]] = {"hyperscan": HyperscanScanner}


def make_scanner(literals: Sequence[Literal], prefer: str | None = None) -> Scanner:
    """The fastest scanner that works here.

    ``prefer`` (default: the ``LOGWATCH_SCANNER`` environment variable) names one:
    ``"python"`` forces the pure-Python fallback, e.g. to compare or to rule out
    a compiled dependency.
    """
    prefer = prefer or os.environ.get("LOGWATCH_SCANNER") or None
    if not literals:
        return EmptyScanner()
    if prefer != "python":
        for name, factory in COMPILED.items():
            if prefer not in (None, name):
                continue
            try:
                return factory(literals)
            except Exception as exc:  # ImportError, or no wheel for this CPU
                log.debug("literal scanner %s unavailable (%s); trying the next", name, exc)
    return FindScanner(literals)
