"""The reference semantics of matching, written out plainly.

The fast matcher (prefilter, joined searches) must give exactly these hits; the
tests and ``bench/run.py`` compare against this one definition.
"""

from __future__ import annotations

import regex

from logwatch.rules import Rule

#: (line start in the data, rule id, "context" | "match" | "resolve", fields)
Hit = tuple[int, str, str, dict[str, str]]


def naive(rules: tuple[Rule, ...], ignore: tuple[regex.Pattern[str], ...], data: bytes) -> list[Hit]:
    """Every line, every rule in order: search, then the ignore patterns, then fields."""
    out: list[Hit] = []
    start = 0
    for raw in data.split(b"\n")[:-1]:
        text = raw.decode("utf-8", "replace")
        for rule in rules:
            context = rule.context.pattern if rule.context is not None else None
            for kind, pattern in (("context", context), ("match", rule.pattern),
                                  ("resolve", rule.resolve)):
                if pattern is None or (m := pattern.search(text)) is None:
                    continue
                if any(p.search(text) for p in rule.ignore + ignore):
                    continue
                out.append((start, rule.id, kind, rule.fields_of(m)))
        start += len(raw) + 1
    return out
