"""Run the rules over lines: bytes in, hits out.

:meth:`Matcher.scan` takes a chunk of whole lines as bytes and yields, for every
line a rule matches (and no ``ignore`` pattern excludes), where the line is and
the rule's named groups. Each search is bounded by a timeout, so a pattern that
backtracks catastrophically is stopped and reported instead of hanging the daemon.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import regex

from logwatch.rules import DEFAULT_MATCH_TIMEOUT, Rule

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Match:
    """A rule matched the line ``data[start:end]`` of the scanned chunk (newline excluded)."""

    start: int
    end: int
    rule: Rule
    fields: dict[str, str]
    text: str


class Matcher:
    """The rules of one source, ready to scan chunks."""

    def __init__(
        self,
        rules: Sequence[Rule],
        *,
        ignore: Sequence[regex.Pattern[str]] = (),
        timeout: float = DEFAULT_MATCH_TIMEOUT,
    ) -> None:
        self.rules = tuple(rules)
        self.ignore = tuple(ignore)
        self.timeout = timeout
        #: per rule id: lines ignored, searches stopped by the timeout
        self.ignored: Counter[str] = Counter()
        self.timeouts: Counter[str] = Counter()

    def notes(self) -> list[str]:
        """Remarks about the rules worth showing in ``logwatch check`` (e.g. no prefilter)."""
        return []

    def scan(self, data: bytes) -> Iterator[Match]:
        """Every (line, rule) match in ``data``, in line order then rule order."""
        start = 0
        size = len(data)
        while start < size:
            end = data.find(b"\n", start)
            if end < 0:
                end = size
            text = data[start:end].decode("utf-8", "replace")
            for rule, fields in self.match_text(text):
                yield Match(start, end, rule, fields, text)
            start = end + 1

    def match_text(self, text: str) -> list[tuple[Rule, dict[str, str]]]:
        """The rules that match one line, with their fields."""
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
