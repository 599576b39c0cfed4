"""Decide which hits become alerts.

This first policy turns every hit into one alert; thresholds, dedup with
accounting and storm digests build on the same interface:

* :meth:`Policy.feed` takes a hit and returns the alerts it causes now;
* :meth:`Policy.tick` returns the alerts that timers cause (summaries, digests);
* :meth:`Policy.load` / :meth:`Policy.save` read and write the policy's state in
  the caller's transaction, so windows survive a restart and a crash.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from logwatch.config import Config
from logwatch.models import Alert, Hit, alert_id
from logwatch.rules import Rule

Clock = Callable[[], float]


class Policy:
    """Turns hits into alerts for one configuration."""

    def __init__(self, config: Config, clock: Clock = time.time) -> None:
        self.config = config
        self.clock = clock
        self.rules: dict[str, Rule] = {r.id: r for r in config.rules}

    def feed(self, hit: Hit) -> list[Alert]:
        """The alerts ``hit`` causes now."""
        if hit.kind != "match":
            return []
        rule = self.rules[hit.rule]
        return [render_alert(self.config, rule, hit, now=hit.line.time or self.clock())]

    def tick(self, now: float | None = None) -> list[Alert]:
        """The alerts timers cause at ``now``."""
        return []

    def load(self, conn: sqlite3.Connection) -> None:
        """Restore windows and counters from the state database."""

    def save(self, conn: sqlite3.Connection) -> None:
        """Write changed windows and counters, in the caller's transaction."""


def render_alert(
    config: Config, rule: Rule, hit: Hit, *, now: float, count: int = 1, extra: dict[str, str] | None = None
) -> Alert:
    """The alert for ``hit`` with the rule's title and message filled in."""
    values: dict[str, object] = {
        **hit.fields,
        "host": config.settings.hostname,
        "rule": rule.id,
        "source": hit.line.source,
        "line": hit.line.text,
        "severity": rule.severity,
        "count": count,
        **(extra or {}),
    }
    return Alert(
        id=alert_id("alert", rule.id, hit.line.key),
        kind="alert",
        rule=rule.id,
        severity=rule.severity,
        title=rule.title.render(values),
        message=rule.message.render(values),
        source=hit.line.source,
        host=config.settings.hostname,
        time=now,
        line=hit.line.text,
        fields=dict(hit.fields),
        count=count,
        to=rule.to,
    )
