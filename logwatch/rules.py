"""A rule: a pattern with named groups, what to ignore, and what to say when it matches."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import regex

from logwatch.models import SEVERITIES, Severity
from logwatch.template import Template

#: rule ids appear in messages, state keys and file names: keep them plain
RULE_ID = regex.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
#: how long one regex may run on one line before it is stopped and reported
DEFAULT_MATCH_TIMEOUT = 0.25


@dataclass(frozen=True, slots=True)
class Threshold:
    """Alert when ``count`` hits with the same ``by`` key fall within ``within`` seconds."""

    count: int
    within: float
    by: Template


@dataclass(frozen=True, slots=True)
class Dedup:
    """After an alert for a key, hold back the same key's alerts for ``window`` seconds."""

    by: Template
    window: float


@dataclass(frozen=True, slots=True)
class FleetThreshold:
    """Alert once when hits with the same ``by`` key come from ``hosts`` hosts within ``within``."""

    hosts: int
    within: float
    by: Template


@dataclass(frozen=True, slots=True)
class Context:
    """Fields a rule's hit takes from an earlier line of its source that shares ``key``.

    Every line ``pattern`` matches is remembered under ``key`` rendered from its
    groups; a later hit renders ``key`` from its own fields and takes the fields it
    lacks from the remembered line, if that line is at most ``within`` lines back
    (in the source's line order). At most ``keep`` keys are remembered per rule.
    With ``require``, a line of the rule that finds no remembered line is no hit.
    """

    key: Template
    pattern: regex.Pattern[str]
    within: int = 200
    keep: int = 10_000
    require: bool = False

    @property
    def groups(self) -> frozenset[str]:
        """The named groups of ``pattern``: the fields it can lend."""
        return frozenset(self.pattern.groupindex)


@dataclass(frozen=True, slots=True)
class RuleTest:
    """One ``[[rules.tests]]`` case: ``line`` must (or must not) match, with these fields."""

    line: str
    match: bool = True
    fields: Mapping[str, str] | None = None
    #: ``rules.toml:31``, the case's own ``[[rules.tests]]`` line, for a failing test
    where: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    """A compiled, validated rule."""

    id: str
    pattern: regex.Pattern[str]
    severity: Severity
    title: Template
    message: Template
    to: tuple[str, ...]
    source: str | None = None
    ignore: tuple[regex.Pattern[str], ...] = ()
    threshold: Threshold | None = None
    dedup: Dedup | None = None
    resolve: regex.Pattern[str] | None = None
    quiet: float | None = None
    tests: tuple[RuleTest, ...] = ()
    fleet: FleetThreshold | None = None
    #: "file:line" of the rule's table, for messages about it
    where: str = ""
    #: fields taken from an earlier line (events that span lines)
    context: Context | None = None

    @property
    def groups(self) -> frozenset[str]:
        """The fields a hit may carry: the pattern's named groups, and its context's."""
        own = frozenset(self.pattern.groupindex)
        return own if self.context is None else own | self.context.groups

    def fields_of(self, match: regex.Match[str]) -> dict[str, str]:
        """A match's named groups, an unset group as ``""``."""
        return {name: value or "" for name, value in match.groupdict().items()}

    def ignores(self, text: str, *, timeout: float = DEFAULT_MATCH_TIMEOUT) -> bool:
        """Whether one of the rule's ``ignore`` patterns matches ``text``."""
        return any(p.search(text, timeout=timeout) for p in self.ignore)

    def describe(self) -> str:
        """How messages name the rule: ``rules.toml:12: rule "ssh-fail"``."""
        return f'{self.where}: rule "{self.id}"' if self.where else f'rule "{self.id}"'


def compile_pattern(text: str) -> regex.Pattern[str]:
    """Compile a rule pattern; ``ValueError`` quotes the regex error and its position."""
    try:
        return regex.compile(text, regex.VERSION0)
    except regex.error as exc:
        # regex.error carries pos and msg at run time; its stubs do not declare them
        pos: int | None = getattr(exc, "pos", None)
        where = f" at position {pos}" if pos is not None else ""
        raise ValueError(f"bad regex{where}: {getattr(exc, 'msg', exc)}:"
                         f"{_pointed(text, pos)}") from exc
    except ValueError as exc:  # flags that exclude each other, such as (?V1) against VERSION0
        raise ValueError(f"bad regex: {exc}:{_pointed(text, None)}") from exc
    except KeyError as exc:  # what older regex releases raise for (?V1) against VERSION0
        raise ValueError(f"bad regex: (?V1) is not supported, rules use the regex module's "
                         f"version 0 syntax:{_pointed(text, None)}") from exc


def _pointed(text: str, pos: int | None) -> str:
    """The pattern as written (no repr's doubled backslashes) with a caret under ``pos``."""
    if not text.isprintable():  # a tab or newline would shift the caret: quote it instead
        return f" {text!r}"
    caret = f"\n    {' ' * pos}^" if pos is not None and 0 <= pos <= len(text) else ""
    return f"\n    {text}{caret}"


def check_severity(value: Any) -> Severity:
    """``value`` if it is a severity name, else ``ValueError``."""
    for name in SEVERITIES:
        if value == name:
            return name
    raise ValueError(f"expected one of {', '.join(SEVERITIES)}, got {value!r}")
