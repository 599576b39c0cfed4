"""What one piece of a replayed file produced: hits, samples, ``--json`` records.

Shared by the one-process replay (:mod:`logwatch.commands.replay`) and its
worker processes (:mod:`logwatch.commands.parallel`), which add their tallies in
file order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from logwatch.matching import Matcher
from logwatch.matching.context import ContextMemory, plain

SAMPLES_PER_RULE = 3


@dataclass
class Tally:
    """What one piece of a file (whole lines) produced, added to the result in file order."""

    lines: int = 0
    bytes: int = 0
    hits: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=dict)
    #: with --json: (line number within the piece, from 1; rule id; fields)
    records: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    ignored: Counter[str] = field(default_factory=Counter)
    timeouts: Counter[str] = field(default_factory=Counter)


def tally(matcher: Matcher, data: bytes, as_json: bool,
          memory: ContextMemory | None = None) -> Tally:
    """Scan one chunk of whole lines.

    ``memory``: what the file's earlier lines lend to rules that take ``context``
    (None if no rule does): ``--json`` shows the fields hits take from them, and a
    line of a rule whose context is required but was not found is no hit.
    """
    found = matcher.find(data, groups=as_json)
    result = Tally(lines=data.count(b"\n"), bytes=len(data), hits=found.counts(),
                   samples=found.samples(SAMPLES_PER_RULE))
    unlinked = Counter(memory.unlinked if memory is not None else ())
    if memory is not None and not as_json:
        memory.skim(found, data, result.lines)  # counting: only the lines a hit can reach
    elif as_json:
        line_no, counted_to = 0, 0
        hits = plain(found) if memory is None else memory.hits(found, data, result.lines)
        for m, fields in hits:
            line_no += data.count(b"\n", counted_to, m.start)
            counted_to = m.start
            result.records.append((line_no + 1, m.rule.id, dict(fields)))
    if memory is not None:
        result.hits -= memory.unlinked - unlinked
    return result
