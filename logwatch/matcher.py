"""Run the rules over lines: bytes in, matches out.

:meth:`Matcher.scan` takes a chunk of whole lines as bytes and yields, for every
line a rule matches (and no ``ignore`` pattern excludes), where the line is and
the rule's named groups. Each search is bounded by a timeout, so a pattern that
backtracks catastrophically is stopped and reported instead of hanging the daemon.

The result is exactly that of the naive loop (for each line, for each rule in
order, ``rule.pattern.search(line)``), only much faster: each pattern's required
literals (:mod:`logwatch.prefilter`) are found in the whole chunk at once, and a
rule runs only on the lines that contain one of its literals. A rule with no
usable literal runs on every line, as before (``logwatch check`` says so).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal as TypingLiteral

import regex

from logwatch.prefilter import Literal, LiteralSet, Scanner, make_scanner, required_sets
from logwatch.rules import DEFAULT_MATCH_TIMEOUT, Rule

log = logging.getLogger(__name__)

MatchKind = TypingLiteral["match", "resolve"]
NO_LITERAL_NOTE = "no literal every match must contain: this rule runs on every line (slower)"
#: how much log the matcher reads before choosing, per rule, its rarest literal set
CALIBRATION_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Match:
    """A rule matched the line ``data[start:end]`` of the scanned chunk (newline excluded).

    ``kind`` is ``"resolve"`` when the line matched the rule's ``resolve`` pattern.
    """

    start: int
    end: int
    rule: Rule
    fields: dict[str, str]
    text: str
    kind: MatchKind = "match"


@dataclass(frozen=True, slots=True)
class _Probe:
    """One pattern to try on a line: a rule's ``match``, or its ``resolve``."""

    rule: Rule
    pattern: regex.Pattern[str]
    kind: MatchKind
    #: the literal sets every match contains (each one is enough to filter lines)
    choices: tuple[LiteralSet, ...]


class Matcher:
    """The rules of one source, ready to scan chunks."""

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        ignore: Sequence[regex.Pattern[str]] = (),
        timeout: float = DEFAULT_MATCH_TIMEOUT,
        scanner: str | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self.ignore = tuple(ignore)
        self.timeout = timeout
        #: per rule id: lines ignored, searches stopped by the timeout
        self.ignored: Counter[str] = Counter()
        self.timeouts: Counter[str] = Counter()
        self._probes = tuple(_probes(self.rules))
        self._prefer = scanner
        #: per probe, the literal set its lines are selected by (None: every line)
        self._chosen = [p.choices[0] if p.choices else None for p in self._probes]
        #: occurrences of each candidate literal in the first CALIBRATION_BYTES read
        self._seen: Counter[Literal] = Counter()
        self._sampled = 0
        self._calibrated = all(len(p.choices) < 2 for p in self._probes)
        self._build()

    def _build(self) -> None:
        """The scanner for the chosen literal sets, and which probes each literal selects."""
        literals: dict[Literal, int] = {}
        masks: list[int] = []
        #: probes with no literal: they run on every line
        self._always = 0
        for bit, chosen in enumerate(self._chosen):
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
        lower = sample.lower()
        for lit in {lit for p in self._probes for s in p.choices for lit in s}:
            raw = lit.text.encode("ascii")
            self._seen[lit] += (lower if lit.caseless else sample).count(raw)
        self._sampled += len(sample)
        if self._sampled < CALIBRATION_BYTES:
            return
        self._calibrated = True
        chosen = [min(p.choices, key=self._cost) if p.choices else None for p in self._probes]
        if chosen != self._chosen:
            self._chosen = chosen
            self._build()

    def _cost(self, literals: LiteralSet) -> int:
        return sum(self._seen[lit] for lit in literals)

    def notes(self) -> list[str]:
        """Remarks about the rules worth showing in ``logwatch check`` (e.g. no prefilter)."""
        notes = []
        for probe in self._probes:
            if not probe.choices:
                what = "resolve: " if probe.kind == "resolve" else ""
                notes.append(f"{what}{NO_LITERAL_NOTE}")
        return notes

    def scan(self, data: bytes) -> Iterator[Match]:
        """Every (line, rule) match in ``data``, in line order then rule order."""
        if not self._calibrated:
            self._calibrate(data)
        candidates = self._candidates(data)
        if self._always:
            for start, end in _lines(data):
                yield from self._line(data, start, end, self._always | candidates.get(start, 0))
            return
        size = len(data)
        for start, mask in candidates.items():
            end = data.find(b"\n", start)
            yield from self._line(data, start, end if end >= 0 else size, mask)

    def _candidates(self, data: bytes) -> dict[int, int]:
        """Line start -> the probes (bits) whose literal occurs in the line, in line order."""
        hits = self.scanner.hits(data)
        hits.sort()
        masks = self._masks
        found: dict[int, int] = {}
        line_start = line_end = -1
        rfind, find = data.rfind, data.find
        mask = 0
        for pos, index in hits:
            if pos >= line_end:
                if mask:
                    found[line_start] = mask
                line_start = rfind(b"\n", 0, pos) + 1
                line_end = find(b"\n", pos)
                if line_end < 0:
                    line_end = len(data)
                mask = 0
            mask |= masks[index]
        if mask:
            found[line_start] = mask
        return found

    def _line(self, data: bytes, start: int, end: int, mask: int) -> Iterator[Match]:
        text = data[start:end].decode("utf-8", "replace")
        probes, search = self._probes, self._search
        while mask:
            low = mask & -mask
            mask ^= low
            probe = probes[low.bit_length() - 1]
            rule = probe.rule
            m = search(rule, probe.pattern, text)
            if m is None:
                continue
            if (rule.ignore or self.ignore) and self._ignored(rule, text):
                self.ignored[rule.id] += 1
                continue
            yield Match(start, end, rule, rule.fields_of(m), text, probe.kind)

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
            if not self.timeouts[rule.id]:
                log.warning("%s: pattern %r took over %.2fs on one line and was stopped; "
                            "the line is skipped for this rule (simplify the pattern)",
                            rule.describe(), pattern.pattern[:80], self.timeout)
            self.timeouts[rule.id] += 1
            return None


def _probes(rules: Sequence[Rule]) -> Iterator[_Probe]:
    """Each rule's patterns in the order their matches are reported."""
    for rule in rules:
        yield _Probe(rule, rule.pattern, "match", tuple(required_sets(rule.pattern)))
        if rule.resolve is not None:
            yield _Probe(rule, rule.resolve, "resolve", tuple(required_sets(rule.resolve)))


def _lines(data: bytes) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each line of ``data``, newline excluded."""
    start, size, find = 0, len(data), data.find
    while start < size:
        end = find(b"\n", start)
        if end < 0:
            end = size
        yield start, end
        start = end + 1
