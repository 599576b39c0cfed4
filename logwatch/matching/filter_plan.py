"""What the matcher asks the line filter, and what its answers mean.

The line filter (:mod:`logwatch.matching.hyperscan_filter`) reports, per chunk, the lines each
rule pattern (each *probe*: a rule's ``match`` or ``resolve``) may match, and
the ``regex`` engine confirms them. On an all-ASCII chunk, nearly every chunk of
a system log, it can say "does match" instead of "may", and those lines are not
searched at all:

- a probe with an exact expression (:func:`~logwatch.matching.hyperscan_filter.exact`): every
  line reported for it matches;
- a probe without one whose alternatives partly have one (``a|b(?!c)``): a line
  an exact alternative matches, matches; only the others are searched;
- a probe whose tight expression (:func:`~logwatch.matching.hyperscan_filter.tight`)
  dropped nothing but negative lookarounds (``b(?!c)``): a line it reports, on
  which no lookaround's body (``c``) occurs anywhere (its *vetoes*, run by the
  filter too), matches; only the vetoed lines are searched;
- a rule's ``ignore`` patterns, checked on the lines it matched: a plain ASCII
  literal is looked for in the line's bytes, a pattern with an exact expression
  is in the filter too, any other is searched as before.

The match itself (for the named groups) of a line found this way is searched
only when asked for; counting hits, as ``logwatch test`` does, never needs it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import regex

from logwatch.matching.hyperscan_filter import (
    LineFilter,
    available,
    exact,
    exact_alternatives,
    make_line_filter,
    plain_literal,
    tight,
    vetoes,
)

Span = tuple[int, int]
#: from this many reported keys per probe on, rows are gathered in one list per probe
_LISTS_FROM = 4
#: per probe (bit) with candidate lines, their indexes in order; probes with none are absent
Rows = dict[int, list[int]]


@dataclass(slots=True)
class Marks:
    """What the filter's extra expressions reported on a chunk's candidate lines (by index)."""

    #: line -> mask of the ignore patterns (their order in the plan) that matched it
    ignored: dict[int, int] = field(default_factory=dict)
    #: line -> mask of the probes (bits) an exact alternative matched it for
    vouched: dict[int, int] = field(default_factory=dict)
    #: line -> mask of the probes (bits) one of whose vetoes matched it
    vetoed: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Ignores:
    """One probe's ignore patterns, by how they are checked."""

    literals: tuple[bytes, ...] = ()
    #: bits of the plan's ignore patterns that the filter runs exactly
    mask: int = 0
    #: the others, searched with the regex engine
    searched: tuple[regex.Pattern[str], ...] = ()


class FilterPlan:
    """The line filter for some probes, with their ignore patterns and exact alternatives."""

    def __init__(self, probes: Sequence[tuple[regex.Pattern[str], Sequence[regex.Pattern[str]]]],
                 prefer: str | None) -> None:
        patterns = [pattern for pattern, _ in probes]
        self._probes = len(patterns)
        extras: list[bytes] = []
        #: per extra expression: what it marks in Marks, and the bit it sets there
        self._extras: list[tuple[str, int]] = []
        #: the ignore patterns in the filter: (text, flags) -> (their bit, the extra's index)
        self._in_filter: dict[tuple[str, int], tuple[int, int]] = {}
        self._ignores: list[_Ignores] = []
        self.line_filter: LineFilter | None = None
        #: the probes the filter covers, as bits
        self.covered = 0
        #: the probes whose lines the filter, on an ASCII chunk, reports exactly
        self.trusted = 0
        #: the probes whose lines it reports exactly on an ASCII chunk unless vetoed
        self.conditional = 0
        if not available(prefer):
            return  # no translation is worth doing
        #: per probe with vetoes, the indexes of their expressions in the filter
        veto_ids: dict[int, list[int]] = {}
        for bit, (pattern, ignores) in enumerate(probes):
            self._ignores.append(self._classify(ignores, extras))
            if exact(pattern) is None:
                for expression in exact_alternatives(pattern):
                    extras.append(expression)
                    self._extras.append(("vouched", 1 << bit))
                for expression in (vetoes(pattern) or ()) if tight(pattern) else ():
                    veto_ids.setdefault(bit, []).append(self._probes + len(extras))
                    extras.append(expression)
                    self._extras.append(("vetoed", 1 << bit))
        self.line_filter = make_line_filter(patterns, prefer, extras)
        if self.line_filter is None:
            return
        done = self.line_filter.exact
        self.covered = sum(1 << bit for bit in self.line_filter.covered)
        self.trusted = sum(1 << bit for bit in done if bit < self._probes) & self.covered
        # conditionally exact: the tight expression runs, and every veto of it does too
        self.conditional = sum(1 << bit for bit, ids in veto_ids.items()
                               if bit in self.line_filter.tight and done.issuperset(ids))
        for bit, (_, ignores) in enumerate(probes):
            self._ignores[bit] = self._classify(ignores, extras, done)

    def _classify(self, ignores: Sequence[regex.Pattern[str]], extras: list[bytes],
                  done: frozenset[int] | None = None) -> _Ignores:
        """Sort one probe's ignore patterns into literals, filter expressions and searches.

        Called twice: before the filter is built (collecting the expressions),
        then with what it runs exactly (``done``: one Hyperscan refused is searched).
        """
        literals, mask, searched = [], 0, []
        for pattern in ignores:
            if (literal := plain_literal(pattern)) is not None:
                literals.append(literal)
                continue
            key = (pattern.pattern, pattern.flags)
            if done is None and key not in self._in_filter and (e := exact(pattern)) is not None:
                self._in_filter[key] = (len(self._in_filter), len(extras))
                extras.append(e)
                self._extras.append(("ignored", 1 << self._in_filter[key][0]))
            where = self._in_filter.get(key)
            if where is not None and (done is None or self._probes + where[1] in done):
                mask |= 1 << where[0]
            else:
                searched.append(pattern)
        return _Ignores(tuple(literals), mask, tuple(searched))

    def rows(self, data: bytes, exact: bool) -> tuple[list[Span], Rows, Marks | None]:
        """The lines the filter reports for some probe, in order; for each probe (bit) it
        reports any line for, which of them (a probe with none has no entry: a small
        chunk costs what it holds, not what the rules are); and, if the filter was exact
        on this chunk, what its extras said."""
        if self.line_filter is None:
            return [], {}, None
        keys, exact_ids = self.line_filter.lines(data, exact)
        keys.sort()
        count, probes, extras = self.line_filter.count, self._probes, self._extras
        spans: list[Span] = []
        # many keys (a big chunk): a list per probe fills faster, the empty ones dropped after
        rows: Rows | list[list[int]] = (
            [[] for _ in range(probes)] if len(keys) > _LISTS_FROM * probes else defaultdict(list))
        # without an exact answer, the extras are not reported (nor would they count)
        marks = Marks() if exact_ids else None
        rfind, last, index = data.rfind, -1, -1
        # "$" also holds at the very end, after the last newline, where there is no line
        limit = len(data) - 1 if data.endswith(b"\n") else len(data)
        for key in keys:
            end, k = divmod(key, count)
            if end > limit:
                break
            if k >= probes:
                # an extra: it matters on lines a probe may match (their keys sort first)
                if end == last and marks is not None:
                    what, bit = extras[k - probes]
                    mark = getattr(marks, what)
                    mark[index] = mark.get(index, 0) | bit
                continue
            if end != last:
                spans.append((rfind(b"\n", 0, end) + 1, end))
                last, index = end, index + 1
            rows[k].append(index)
        if isinstance(rows, list):
            rows = {bit: row for bit, row in enumerate(rows) if row}
        return spans, rows, marks

    def sure(self, bit: int, lines: list[int], marks: Marks) -> tuple[list[int], list[int]]:
        """Of a probe's lines, those it surely matches, and those to search."""
        if self.trusted >> bit & 1:
            return lines, []
        vouched = marks.vouched
        if self.conditional >> bit & 1:
            vetoed = marks.vetoed
            if not vetoed:
                return lines, []
            doubt = [i for i in lines
                     if vetoed.get(i, 0) >> bit & 1 and not vouched.get(i, 0) >> bit & 1]
            if not doubt:
                return lines, []
            unsure = set(doubt)
            return [i for i in lines if i not in unsure], doubt
        if not vouched:
            return [], lines
        sure = [i for i in lines if vouched.get(i, 0) >> bit & 1]
        if not sure:
            return [], lines
        return sure, [i for i in lines if not vouched.get(i, 0) >> bit & 1]

    def unignored(self, bit: int, lines: list[int], marks: Marks, data: bytes,
                  spans: list[Span], search: Callable[[regex.Pattern[str], int], bool],
                  ) -> list[int]:
        """The lines (surely matched by probe ``bit``) that none of its ignore patterns match.

        ``search(pattern, line)`` tells whether a pattern matches a line, by the regex engine.
        """
        ignores = self._ignores[bit]
        kept = lines
        if ignores.mask and marks.ignored:
            ignored, mask = marks.ignored, ignores.mask
            kept = [i for i in kept if not ignored.get(i, 0) & mask]
        if ignores.literals:
            find = data.find
            kept = [i for i in kept if all(find(lit, *spans[i]) < 0 for lit in ignores.literals)]
        for pattern in ignores.searched:
            kept = [i for i in kept if not search(pattern, i)]
        return kept

