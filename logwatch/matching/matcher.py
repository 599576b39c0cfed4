"""Run the rules over lines: bytes in, matches out.

:meth:`Matcher.scan` takes a chunk of whole lines as bytes and yields, for every
line a rule matches (and no ``ignore`` pattern excludes), where the line is and
the rule's named groups. Each search is bounded by a timeout, so a pattern that
backtracks catastrophically is stopped and reported instead of hanging the daemon;
after :data:`TIMEOUTS_PER_CHUNK` such stops in one chunk, the rule skips the rest
of that chunk's lines (counted), so one chunk costs a bounded time, and
``on_slow`` is called after each stop (the daemon pings its watchdog there).

The result is exactly that of the naive loop (for each line, for each rule in
order, ``rule.pattern.search(line)``), only much faster. A pattern runs only on
the lines that may match it:

- with Hyperscan installed, the lines its loosened whole pattern matches
  (:mod:`logwatch.matching.hyperscan_filter`), found for all patterns in one scan per chunk;
  on an all-ASCII chunk most patterns run exactly, and a line Hyperscan
  reports for them is a match without a search until its groups are asked
  for (:mod:`logwatch.matching.filter_plan`; ``find(groups=True)`` searches every line);
- otherwise (or for a pattern the filter does not cover), the lines holding one
  of its required literals (:mod:`logwatch.matching.literals`), found in one pass; a
  rule with no usable literal runs on every line (``logwatch check`` says so).

On literal-selected lines, a pattern that provably cannot see past a line
(:mod:`logwatch.matching.line_bound`) searches them joined, one call per match instead of
one per line; filter-selected lines nearly all match, so they are searched one
by one.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Literal as TypingLiteral
from typing import Protocol

import regex

from logwatch.matching.backtracking import NESTED_NOTE, has_nested_repeats
from logwatch.matching.filter_plan import FilterPlan, Marks, Rows
from logwatch.matching.hyperscan_filter import LineFilter
from logwatch.matching.line_bound import line_bound
from logwatch.matching.literals import (
    FindScanner,
    Literal,
    LiteralSet,
    Scanner,
    make_scanner,
    required_sets,
)
from logwatch.rules import DEFAULT_MATCH_TIMEOUT, Rule

log = logging.getLogger(__name__)

#: "context": the line matched a rule's ``context.from`` (it lends fields, it is no hit)
MatchKind = TypingLiteral["match", "resolve", "context"]
#: a match located without searching: (key, line start, kind, rule id); see Found.spots
Spot = tuple[int, int, MatchKind, str]
#: a hit, as the daemon's loop takes it: (line start, line text, rule id, kind, fields);
#: see Found.hits
HitRow = tuple[int, str, str, TypingLiteral["match", "resolve"], Mapping[str, str]]
NO_LITERAL_NOTE = "no literal every match must contain: this rule runs on every line (slower)"
#: how much log the matcher reads before choosing, per rule, its rarest literal set
CALIBRATION_BYTES = 1 << 20
#: searches of one pattern stopped by the timeout in one chunk before it skips the rest
TIMEOUTS_PER_CHUNK = 3


class Match:
    """A rule matched the line ``data[start:end]`` of the scanned chunk (newline excluded).

    ``kind`` is ``"resolve"`` when the line matched the rule's ``resolve`` pattern,
    ``"context"`` when it matched its ``context.from`` pattern.
    ``fields`` (the rule's named groups, an unset one as ``""``) is read from the
    regex match when first asked for: counting hits, as ``logwatch test`` does,
    never pays for it.
    """

    __slots__ = ("_fields", "_match", "_names", "end", "kind", "rule", "start", "text")

    def __init__(self, start: int, end: int, rule: Rule, text: str, kind: MatchKind,
                 match: regex.Match[str] | None, names: tuple[str, ...] | None = None) -> None:
        self.start, self.end, self.rule, self.text, self.kind = start, end, rule, text, kind
        self._match = match
        #: the pattern's group names, if they are its groups 1, 2, ... in order (_Probe.names)
        self._names = names
        self._fields: dict[str, str] | None = None

    @property
    def fields(self) -> dict[str, str]:
        """The rule's named groups (what ``rule.fields_of(match)`` returns)."""
        if self._fields is None:
            match = self._match
            # None: a pattern without named groups, never searched (the filter vouched)
            self._fields = {} if match is None else _fields_of(match, self._names)
        return self._fields

    def release(self) -> None:
        """Read the fields now and drop the regex match (it holds the groups' spans)."""
        self._fields = self.fields
        self._match = None

    def __repr__(self) -> str:
        return (f"Match({self.start}, {self.end}, rule={self.rule.id!r}, kind={self.kind!r}, "
                f"fields={self.fields!r})")


class Found:
    """The matches of one chunk, in line order then rule order.

    Iterating yields :class:`Match` objects (``context`` lines included);
    :meth:`counts` and :meth:`samples` answer ``logwatch test``'s questions
    without making one per hit, and leave ``context`` lines out (they are no hits).
    """

    __slots__ = ("_counts", "_found", "_grouped", "_keys", "_probes", "_rows", "_run",
                 "_spans", "_texts")

    def __init__(self, probes: Sequence[_Probe], spans: list[tuple[int, int]], texts: _Lines,
                 keys: list[int], found: dict[int, regex.Match[str] | None], run: _Run,
                 grouped: bool = False, rows: Sequence[_RowOf] | None = None) -> None:
        self._probes, self._spans, self._texts = probes, spans, texts
        #: per probe, what a hit row takes from it (:func:`_rows_of`; the matcher's, made once)
        self._rows = _rows_of(probes) if rows is None else rows
        #: ``line * len(probes) + probe``, sorted, ignored matches left out; the regex match
        #: of those searched already (None: the search was stopped by the timeout; absent:
        #: the exact line filter found it, not searched yet), so never more keys than those
        self._keys, self._found = keys, found
        #: the searches of one probe's lines (:meth:`Matcher._run`): what gives a match the
        #: exact line filter found its groups
        self._run = run
        #: every match but the ``context`` lines was searched (``find(groups=True)``): a
        #: key of theirs absent from ``_found`` is one of a pattern without named groups
        self._grouped = grouped
        self._counts: Counter[str] | None = None

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[Match]:
        return self._matches(self._keys)

    def of_rules(self, rule_ids: Container[str]) -> Iterator[Match]:
        """The matches (``context`` lines included) of the rules ``rule_ids`` only."""
        return self.pick([key for key, _, _, _ in self.spots(rule_ids)])

    def spots(self, rule_ids: Container[str]) -> list[Spot]:
        """``(key, line start, kind, rule id)`` of the matches of the rules ``rule_ids``, in
        order, without searching anything (:meth:`pick` makes the matches of chosen keys)."""
        probes, count, spans = self._probes, len(self._probes), self._spans
        return [(key, spans[key // count][0], probe.kind, probe.rule.id) for key in self._keys
                if (probe := probes[key % count]).rule.id in rule_ids]

    def pick(self, keys: list[int]) -> Iterator[Match]:
        """The matches of ``keys`` (from :meth:`spots`), in the order given."""
        return self._matches(keys)

    def pick_except(self, keys: list[int]) -> Iterator[Match]:
        """All the matches in order but those of ``keys`` (from :meth:`spots`, in order)."""
        if not keys:
            return self._matches(self._keys)
        drop = set(keys)
        return self._matches([key for key in self._keys if key not in drop])

    def hits(self) -> list[HitRow]:
        """Every match but the ``context`` lines, in order, as ``(line start, line text, rule
        id, kind, fields)``: what :meth:`ContextMemory.hits
        <logwatch.matching.context.ContextMemory.hits>` gives for rules that take no context,
        made for the daemon's loop (one list, one tuple per hit: no :class:`Match`, no
        generator resumed per hit).

        Each regex match is let go once its fields are read (the daemon reads a chunk's hits
        once; another pass searches again): a read of many short hits holds a hit's fields
        instead of its regex match, not both. The fields are what :attr:`Match.fields`
        reads."""
        rows, spans, texts, found, count = (self._rows, self._spans, self._texts,
                                            self._found, len(self._probes))
        if not self._grouped:
            self._search(self._keys)
        out: list[HitRow] = []
        for key in self._keys:
            index, bit = divmod(key, count)
            kind, rule_id, groups, names = rows[bit]
            if kind is None:
                continue  # a context line
            match = found.pop(key, None)
            if match is None and groups:
                continue  # its search was stopped by the timeout, or skipped after stops
            # None: never searched, the exact filter vouched (a pattern without named groups);
            # else _fields_of, written out (a call a hit)
            fields = ({} if match is None else match.groupdict(default="") if names is None
                      else dict(zip(names, match.groups(""), strict=True)))
            out.append((spans[index][0], texts[index], rule_id, kind, fields))
        self._grouped = False  # their regex matches are gone: a second call searches again
        return out

    def _matches(self, keys: list[int], *, release: bool = False) -> Iterator[Match]:
        """The matches of ``keys``, made at once (every caller takes them all); ``release``:
        each with its fields read and its regex match dropped (see :meth:`hits`)."""
        self._search(keys)
        probes, spans, texts, found, count = (self._probes, self._spans, self._texts,
                                              self._found, len(self._probes))
        out = []
        for key in keys:
            index, bit = divmod(key, count)
            probe = probes[bit]
            match = found.pop(key, None) if release else found.get(key)
            if match is None and probe.groups:
                continue  # its search was stopped by the timeout, or skipped after stops
            start, end = spans[index]
            made = Match(start, end, probe.rule, texts[index], probe.kind, match, probe.names)
            if release:
                made.release()
            out.append(made)
        return iter(out)

    def _search(self, keys: list[int]) -> None:
        """Search the lines of ``keys`` the exact filter vouched for, for their groups (a
        pattern without named groups needs none): one probe at a time, each in one tight
        loop, as :meth:`Matcher.find` searches the others, with the same time bound."""
        found, probes, count = self._found, self._probes, len(self._probes)
        if len(found) == len(self._keys):
            return  # every match searched already (the daemon's chunk without context lines)
        rows: dict[int, list[int]] = {}
        for key in keys:
            if key not in found:
                index, bit = divmod(key, count)
                if probes[bit].groups:
                    rows.setdefault(bit, []).append(index)
        for bit, lines in rows.items():
            matches: dict[int, regex.Match[str] | None] = dict.fromkeys(
                [index * count + bit for index in lines])
            self._run(bit, probes[bit], lines, self._texts, matches)
            found.update(matches)

    def counts(self) -> Counter[str]:
        """Matches per rule id."""
        if self._counts is None:
            per_probe = Counter(map(len(self._probes).__rmod__, self._keys))
            self._counts = Counter()
            for bit, n in per_probe.items():
                if (probe := self._probes[bit]).kind != "context":
                    self._counts[probe.rule.id] += n
        return Counter(self._counts)

    def samples(self, limit: int) -> dict[str, list[str]]:
        """The first ``limit`` matched lines of each rule."""
        wanted = dict.fromkeys(self.counts(), limit)
        out: dict[str, list[str]] = {}
        probes, texts, count = self._probes, self._texts, len(self._probes)
        for key in self._keys:
            if not wanted:
                break
            index, bit = divmod(key, count)
            rule_id = probes[bit].rule.id
            if rule_id in wanted and probes[bit].kind != "context":
                out.setdefault(rule_id, []).append(texts[index])
                wanted[rule_id] -= 1
                if not wanted[rule_id]:
                    del wanted[rule_id]
        return out


@dataclass(frozen=True, slots=True)
class _Probe:
    """One pattern to try on a line: a rule's ``match``, ``resolve`` or ``context.from``."""

    rule: Rule
    pattern: regex.Pattern[str]
    kind: MatchKind
    #: whether the pattern has named groups (without, a line the filter vouched for is a
    #: match with no fields, never searched)
    groups: bool = True
    #: its group names, when they are all its groups, numbered 1, 2, ... in their order
    #: (a name used twice is one group): ``groupdict`` is then ``zip(names, groups)``
    names: tuple[str, ...] | None = None

    @property
    def choices(self) -> tuple[LiteralSet, ...]:
        """The literal sets every match contains (each one is enough to filter lines), worked
        out when first needed: a probe the line filter covers never needs them."""
        return _choices(self.pattern)

    @property
    def twin(self) -> regex.Pattern[str] | None:
        """A MULTILINE twin that may run over many lines joined at once, if the pattern is
        line-bound (worked out when first needed: only the literal prefilter's lines use it)."""
        return _twin(self.pattern)


class Matcher:
    """The rules of one source, ready to scan chunks."""

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        ignore: Sequence[regex.Pattern[str]] = (),
        timeout: float = DEFAULT_MATCH_TIMEOUT,
        scanner: str | None = None,
        batch: bool = True,
        on_slow: Callable[[], None] | None = None,
    ) -> None:
        self.rules = tuple(rules)
        #: called after each search the timeout stopped (long work: keep the watchdog fed)
        self.on_slow = on_slow
        #: per rule id: lines not searched because the rule timed out too often in a chunk
        self.skipped: Counter[str] = Counter()
        #: whether line-bound patterns search many lines in one call (False: one call per line)
        self.batch = batch
        self.ignore = tuple(ignore)
        self.timeout = timeout
        #: per rule id: lines ignored, searches stopped by the timeout
        self.ignored: Counter[str] = Counter()
        self.timeouts: Counter[str] = Counter()
        self._probes = tuple(_probes(self.rules))
        self._rows = _rows_of(self._probes)
        self._prefer = scanner
        self._plan = FilterPlan([(p.pattern, (*p.rule.ignore, *self.ignore))
                                 for p in self._probes], scanner)
        #: Hyperscan running whole patterns (loosened, or exact), where installed
        self.line_filter: LineFilter | None = self._plan.line_filter
        self._covered = self._plan.covered
        #: the probes whose lines the exact filter reports are all hits, to search for their
        #: groups only: exact, with named groups, no ``context`` and nothing to ignore
        self._plain = sum(1 << bit for bit, p in enumerate(self._probes)
                          if p.groups and p.kind != "context" and not p.rule.ignore
                          and not self.ignore) & self._plan.trusted
        #: per probe, the literal set its lines are selected by (None: every line)
        self._chosen = [None if self._covered >> bit & 1 or not p.choices else p.choices[0]
                        for bit, p in enumerate(self._probes)]
        #: occurrences of each candidate literal in the first CALIBRATION_BYTES read
        self._seen: Counter[Literal] = Counter()
        self._sampled = 0
        self._calibrated = all(self._covered >> bit & 1 or len(p.choices) < 2
                               for bit, p in enumerate(self._probes))
        self._build()

    def _build(self) -> None:
        """The scanner for the chosen literal sets, and which probes each literal selects."""
        literals: dict[Literal, int] = {}
        masks: list[int] = []
        #: probes with no literal: they run on every line
        self._always = 0
        for bit, chosen in enumerate(self._chosen):
            if self._covered >> bit & 1:
                continue  # the line filter selects its lines
            if chosen is None:
                self._always |= 1 << bit
                continue
            for lit in sorted(chosen):
                index = literals.setdefault(lit, len(literals))
                if index == len(masks):
                    masks.append(0)
                masks[index] |= 1 << bit
        #: literal index -> the probes (bits) that need it
        self._masks = tuple(masks)
        self.scanner: Scanner = make_scanner(list(literals), prefer=self._prefer)

    def _calibrate(self, data: bytes) -> None:
        """Count the candidate literals in the first logs read, then pick the rarest sets.

        The parse of a pattern tells which literals are necessary, not which are
        rare in these logs (``CRON[`` or ``error``?): counting them tells. Any
        choice gives the same matches; only the speed differs.
        """
        sample = data[: CALIBRATION_BYTES - self._sampled]
        literals = sorted({lit for bit, p in enumerate(self._probes) if not self._covered >> bit & 1
                           for s in p.choices for lit in s})
        counter = make_scanner(literals, prefer=self._prefer)
        if isinstance(counter, FindScanner):
            # without a compiled scanner, bytes.count beats a find loop over every occurrence
            lower = sample.lower()
            for lit in literals:
                raw = lit.text.encode("ascii")
                self._seen[lit] += (lower if lit.caseless else sample).count(raw)
        else:
            self._seen.update(literals[index] for _, index in counter.hits(sample))
        self._sampled += len(sample)
        if self._sampled < CALIBRATION_BYTES:
            return
        self._calibrated = True
        chosen = [None if self._covered >> bit & 1 or not p.choices
                  else min(p.choices, key=self._cost) for bit, p in enumerate(self._probes)]
        if chosen != self._chosen:
            self._chosen = chosen
            self._build()

    def _cost(self, literals: LiteralSet) -> int:
        return sum(self._seen[lit] for lit in literals)

    @property
    def patterns(self) -> int:
        """How many patterns the rules run (each ``match``, each ``resolve``)."""
        return len(self._probes)

    def notes(self) -> list[str]:
        """Remarks about the rules worth showing in ``logwatch check`` (e.g. no prefilter)."""
        notes = []
        for probe in self._probes:
            what = "resolve: " if probe.kind == "resolve" else ""
            if not probe.choices:
                what = "" if probe.kind == "match" else f"{probe.kind}: "
                notes.append(f"{what}{NO_LITERAL_NOTE}")
            if has_nested_repeats(probe.pattern.pattern):
                notes.append(f"{what}{NESTED_NOTE}")
        return notes

    def scan(self, data: bytes) -> Iterator[Match]:
        """Every (line, rule) match in ``data``, in line order then rule order."""
        return iter(self.find(data, groups=True))

    def find(self, data: bytes, groups: bool = False) -> Found:
        """The matches in ``data`` (what :meth:`scan` yields), as a whole.

        ``groups``: the matches will be iterated for their groups (the daemon, ``--json``),
        so the candidate lines are decoded at once and searched now, in one tight loop per
        rule, but for ``context`` lines (a caller may leave some out: :meth:`spots`,
        :meth:`pick`); otherwise the lines the exact line filter vouches for are searched
        only if iterated. A pattern without named groups is never searched on them.
        """
        if not self._calibrated:
            self._calibrate(data)
        spans, rows, marks = self._candidate_lines(data, exact=True)
        texts = _decode(data, spans) if groups else _Texts(data, spans)
        # line * len(probes) + bit: sorted, they order matches by line, then rule
        keys: list[int] = []
        found: dict[int, regex.Match[str] | None] = {}
        probes, count, plain = self._probes, len(self._probes), self._plain
        # the timeout's stops per probe in this chunk, however its lines are split between
        # searches (vouched for or not, now or when iterated): TIMEOUTS_PER_CHUNK in all
        stops: dict[int, int] = {}

        def run(bit: int, probe: _Probe, rows: list[int], texts: _Lines,
                into: dict[int, regex.Match[str] | None]) -> None:
            self._run(bit, probe, rows, texts, stops, into, count)

        # only the probes with candidate lines: a small chunk costs what it holds
        for bit in sorted(rows):
            probe, lines = probes[bit], rows[bit]
            if marks is not None:
                if groups and plain >> bit & 1:
                    # surely matched, nothing to ignore: searched at once for the groups
                    self._run(bit, probe, lines, texts, stops, found, count)
                    continue
                # the exact line filter's word: searched only for the groups
                sure, lines = self._plan.sure(bit, lines, marks)
                if probe.rule.ignore or self.ignore:
                    sure = self._unignored(bit, probe, sure, marks, data, spans, texts)
                if groups and probe.groups and probe.kind != "context":
                    self._run(bit, probe, sure, texts, stops, found, count)
                else:
                    keys.extend(index * count + bit for index in sure)
            if not lines:
                continue
            if probe.rule.ignore or self.ignore:
                matches: dict[int, regex.Match[str] | None] = {}
                self._run(bit, probe, lines, texts, stops, matches, count)
                self._drop_ignored(probe.rule, matches, texts, count)
                found.update(matches)
            else:
                self._run(bit, probe, lines, texts, stops, found, count)
        keys.extend(found)
        keys.sort()
        return Found(self._probes, spans, texts, keys, found, run, groups, self._rows)

    def _unignored(self, bit: int, probe: _Probe, sure: list[int], marks: Marks, data: bytes,
                   spans: list[tuple[int, int]], texts: _Lines) -> list[int]:
        """The lines the probe surely matches, less those its ignore patterns match (counted)."""
        if not sure:
            return sure
        rule = probe.rule

        def search(pattern: regex.Pattern[str], index: int) -> bool:
            return self._search(rule, pattern, texts[index]) is not None

        kept = self._plan.unignored(bit, sure, marks, data, spans, search)
        if len(kept) < len(sure):
            self.ignored[rule.id] += len(sure) - len(kept)
        return kept

    def _drop_ignored(self, rule: Rule, matches: dict[int, regex.Match[str] | None],
                      texts: _Lines, count: int) -> None:
        """Drop the matches (by key: line * ``count`` + probe) an ``ignore`` pattern
        excludes, counting them in ``.ignored``."""
        for key in [k for k in matches if self._ignored(rule, texts[k // count])]:
            del matches[key]
            self.ignored[rule.id] += 1

    def _candidate_lines(
        self, data: bytes, exact: bool
    ) -> tuple[list[tuple[int, int]], Rows, Marks | None]:
        """The lines some probe must run on, in order, per probe (bit) which of them, and
        (when the line filter was exact) what else it said about them."""
        if self.line_filter is not None and self._covered == (1 << len(self._probes)) - 1:
            return self._plan.rows(data, exact)
        spans, masks = self._candidates(data)
        if self._always:
            found = dict(zip((start for start, _ in spans), masks, strict=True))
            spans = list(_lines(data))
            masks = [self._always | found.get(start, 0) for start, _ in spans]
        rows: Rows = defaultdict(list)
        for index, line_mask in enumerate(masks):
            bits = line_mask
            while bits:
                low = bits & -bits
                bits ^= low
                rows[low.bit_length() - 1].append(index)
        return spans, rows, None

    def _run(self, bit: int, probe: _Probe, rows: list[int], texts: _Lines,
             stops: dict[int, int], found: dict[int, regex.Match[str] | None],
             count: int) -> None:
        """Put the probe's matches on the lines ``rows`` (indexes into ``texts``) in
        ``found``, by key: ``line * count + bit``.

        ``stops``: per probe, how often the timeout stopped it in this chunk so far (its
        lines may be searched in several calls); at TIMEOUTS_PER_CHUNK the rest is skipped.

        A line-bound pattern (:mod:`logwatch.matching.line_bound`) searches all the lines at
        once, joined; when that search is stopped by the timeout, the lines not
        yet done are searched one by one, as the naive loop does, so the line
        that is too slow is found, counted and logged.
        """
        done = 0
        # lines the line filter picked nearly all match: a join would not pay for itself
        if self.batch and not self._covered >> bit & 1 and probe.twin is not None:
            done = self._joined(probe.twin, rows, texts, found, count, bit)
        search, timeout = probe.pattern.search, self.timeout
        rest = rows[done:] if done else rows
        if rest and stops.get(bit, 0) >= TIMEOUTS_PER_CHUNK:
            self._skip_rest(probe.rule, len(rest))
            return
        while rest:
            try:
                # done: how many lines are finished if this one times out (read below)
                for done, index in enumerate(rest, 1):  # noqa: B007
                    if (m := search(texts[index], timeout=timeout)) is not None:
                        found[index * count + bit] = m
                return
            except TimeoutError:
                self._timed_out(probe.rule, probe.pattern)
                rest = rest[done:]
                stops[bit] = stops.get(bit, 0) + 1
                if stops[bit] >= TIMEOUTS_PER_CHUNK and rest:
                    self._skip_rest(probe.rule, len(rest))
                    return

    def _skip_rest(self, rule: Rule, count: int) -> None:
        """The rule timed out too often in this chunk: its other lines here are not searched."""
        if not self.skipped[rule.id]:
            log.warning("%s: stopped by the match timeout %d times in one batch of lines; "
                        "its other lines there were skipped for this rule (further skips are "
                        "counted, not logged)", rule.describe(), TIMEOUTS_PER_CHUNK)
        self.skipped[rule.id] += count

    def _joined(self, twin: regex.Pattern[str], rows: list[int], texts: _Lines,
                found: dict[int, regex.Match[str] | None], count: int, bit: int) -> int:
        """Search ``rows`` joined with newlines, first match per line (in ``found`` by key:
        ``line * count + bit``); how many rows are done."""
        joined = "\n".join([texts[index] for index in rows])
        # where each row starts in ``joined``
        starts = list(accumulate([len(texts[index]) + 1 for index in rows[:-1]], initial=0))
        search, timeout, last = twin.search, self.timeout, len(rows) - 1
        row = 0
        while True:
            try:
                m = search(joined, starts[row], timeout=timeout)
            except TimeoutError:
                return row
            if m is None:
                return len(rows)
            row = bisect_right(starts, m.start(), row) - 1
            found[rows[row] * count + bit] = m
            if row == last:
                return len(rows)
            row += 1

    def _candidates(self, data: bytes) -> tuple[list[tuple[int, int]], list[int]]:
        """The lines some probe may match, and which probes (bits), in line order."""
        if self.line_filter is None or not self._covered:
            return self._literal_candidates(data)
        spans, rows, _ = self._plan.rows(data, exact=False)
        masks = [0] * len(spans)
        for bit, indexes in rows.items():
            for index in indexes:
                masks[index] |= 1 << bit
        found = dict(zip(spans, masks, strict=True))
        for span, mask in zip(*self._literal_candidates(data), strict=True):
            found[span] = found.get(span, 0) | mask
        ordered = sorted(found)
        return ordered, [found[span] for span in ordered]

    def _literal_candidates(self, data: bytes) -> tuple[list[tuple[int, int]], list[int]]:
        """The lines containing a literal, and the probes (bits) they select, in line order."""
        hits = self.scanner.hits(data)
        hits.sort()
        literal_masks = self._masks
        spans: list[tuple[int, int]] = []
        masks: list[int] = []
        line_end = -1
        rfind, find, size = data.rfind, data.find, len(data)
        for pos, index in hits:
            if pos >= line_end:
                line_end = find(b"\n", pos)
                if line_end < 0:
                    line_end = size
                spans.append((rfind(b"\n", 0, pos) + 1, line_end))
                masks.append(literal_masks[index])
            else:
                masks[-1] |= literal_masks[index]
        return spans, masks

    def match_text(self, text: str) -> list[tuple[Rule, dict[str, str]]]:
        """The rules that match one line, with their fields (the naive loop, no prefilter)."""
        found = []
        for rule in self.rules:
            m = self._search(rule, rule.pattern, text)
            if m is None:
                continue
            if self._ignored(rule, text):
                self.ignored[rule.id] += 1
                continue
            found.append((rule, rule.fields_of(m)))
        return found

    def _ignored(self, rule: Rule, text: str) -> bool:
        patterns = rule.ignore + self.ignore
        return any(self._search(rule, p, text) is not None for p in patterns)

    def _search(
        self, rule: Rule, pattern: regex.Pattern[str], text: str
    ) -> regex.Match[str] | None:
        try:
            return pattern.search(text, timeout=self.timeout)
        except TimeoutError:
            self._timed_out(rule, pattern)
            return None

    def _timed_out(self, rule: Rule, pattern: regex.Pattern[str]) -> None:
        """Count a search stopped by the timeout; the first one per rule is logged."""
        if not self.timeouts[rule.id]:
            log.warning("%s: pattern %r took over %.2fs on one line and was stopped; "
                        "the line is skipped for this rule (simplify the pattern)",
                        rule.describe(), pattern.pattern[:80], self.timeout)
        self.timeouts[rule.id] += 1
        if self.on_slow is not None:
            self.on_slow()


def _probes(rules: Sequence[Rule]) -> Iterator[_Probe]:
    """Each rule's patterns in the order their matches are reported: on one line, what a
    rule's context remembers comes before the rule's own hit."""
    for rule in rules:
        if rule.context is not None:
            yield _probe(rule, rule.context.pattern, "context")
        yield _probe(rule, rule.pattern, "match")
        if rule.resolve is not None:
            yield _probe(rule, rule.resolve, "resolve")


def _probe(rule: Rule, pattern: regex.Pattern[str], kind: MatchKind) -> _Probe:
    index = pattern.groupindex
    plain = list(index.values()) == list(range(1, pattern.groups + 1))
    return _Probe(rule, pattern, kind, bool(index), tuple(index) if plain else None)


def _fields_of(match: regex.Match[str], names: tuple[str, ...] | None) -> dict[str, str]:
    """A match's named groups, an unset one as ``""``; ``names``: the pattern's group names
    if they are its groups 1, 2, ... in order (the same dict, in the same order, for half of
    ``groupdict``'s cost), else None."""
    if names is not None:
        return dict(zip(names, match.groups(""), strict=True))
    return match.groupdict(default="")


#: what a hit row takes from its probe: kind (None: a ``context`` line, no hit), rule id,
#: whether the pattern has named groups, and its group names if in order (_Probe.names)
_RowOf = tuple[TypingLiteral["match", "resolve"] | None, str, bool, tuple[str, ...] | None]


def _rows_of(probes: Sequence[_Probe]) -> tuple[_RowOf, ...]:
    """Per probe, what :meth:`Found.hits` takes from it, in one tuple (one look-up a hit)."""
    return tuple((None if p.kind == "context" else p.kind, p.rule.id, p.groups, p.names)
                 for p in probes)


@lru_cache(maxsize=1024)
def _choices(pattern: regex.Pattern[str]) -> tuple[LiteralSet, ...]:
    return tuple(required_sets(pattern))


@lru_cache(maxsize=1024)
def _twin(pattern: regex.Pattern[str]) -> regex.Pattern[str] | None:
    return line_bound(pattern)


#: below one line to decode per this many bytes of chunk, each line is decoded alone: a
#: small read holding a few hits decodes those, not the whole chunk (measured break-even)
_DECODE_WHOLE = 512


class _Lines(Protocol):
    """The text of a chunk's candidate lines, by index: a list, or :class:`_Texts`."""

    def __getitem__(self, index: int, /) -> str: ...


#: :meth:`Matcher._run`: a probe's matches on some candidate lines, put in a dict by key
_Run = Callable[[int, _Probe, list[int], _Lines, dict[int, "regex.Match[str] | None"]], None]


class _Texts:
    """The text of each line ``data[start:end]`` of ``spans``, as the naive loop decodes it,
    decoded when asked for (``logwatch test`` rarely needs the lines the exact filter vouches
    for; decoding again is cheaper than remembering)."""

    __slots__ = ("_data", "_spans")

    def __init__(self, data: bytes, spans: list[tuple[int, int]]) -> None:
        self._data, self._spans = data, spans

    def __getitem__(self, index: int) -> str:
        start, end = self._spans[index]
        return self._data[start:end].decode("utf-8", "replace")


def _decode(data: bytes, spans: list[tuple[int, int]]) -> list[str]:
    """The text of every line ``data[start:end]`` at once, as the naive loop decodes it."""
    if len(spans) * _DECODE_WHOLE > len(data) and data.isascii():
        # one decode for the whole chunk; ASCII offsets are the same in bytes and text
        text = data.decode("ascii")
        return [text[start:end] for start, end in spans]
    return [data[start:end].decode("utf-8", "replace") for start, end in spans]


def _lines(data: bytes) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each line of ``data``, newline excluded."""
    start, size, find = 0, len(data), data.find
    while start < size:
        end = find(b"\n", start)
        if end < 0:
            end = size
        yield start, end
        start = end + 1
