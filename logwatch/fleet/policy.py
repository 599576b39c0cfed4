"""The policy's side of the fleet: fleet thresholds, and a word when they cannot work.

:class:`FleetPolicy` is called by :class:`~logwatch.policy.policy.Policy` for each hit of a
rule with ``fleet = { hosts, within, by }``. It reports the hit through
:class:`~logwatch.fleet.thresholds.FleetThresholds` (to Redis, or to an in-process
store in a replay); the one host whose report
completes the count gets the alert (its id comes from the line, so a replay after a
crash derives the same one). When Redis is unavailable it returns, once per outage,
a ``system`` alert saying fleet thresholds are off; hits go on counting locally.
"""

from __future__ import annotations

import logging

from logwatch.config import Config
from logwatch.durations import format_duration
from logwatch.fleet.link import FleetUnavailable
from logwatch.fleet.store import FleetStore
from logwatch.fleet.thresholds import FleetThresholds
from logwatch.models import Alert, Hit, alert_id, line_alert_id
from logwatch.policy.render import render_alert
from logwatch.rules import Rule

log = logging.getLogger(__name__)


class FleetPolicy:
    """Fleet thresholds for one host's policy; see the module docstring."""

    def __init__(self, store: FleetStore, config: Config) -> None:
        self.store = store
        self.config = config
        self.thresholds = FleetThresholds(store, config.settings.hostname)
        #: the outage already announced (its start), so it is announced once
        self._announced: float | None = None
        self.fail_open = 0

    def feed(self, rule: Rule, key: str, hit: Hit, t: float) -> tuple[list[Alert], bool]:
        """``(alerts, fired)`` for one hit of ``rule`` with fleet key ``key``."""
        fleet = rule.fleet
        if fleet is None:
            return [], False
        try:
            count = self.thresholds.hit(rule.id, key, t, fleet.within, fleet.hosts, hit.line.key)
        except FleetUnavailable as exc:
            self.fail_open += 1
            return self._unavailable(rule, str(exc), t), False
        self._announced = None
        if count is None or not count.fired:
            return [], False
        within = format_duration(fleet.within)
        alert = render_alert(self.config, rule, hit, now=t, extra={"within": within})
        names = ", ".join(count.names[:10]) + (", ..." if count.hosts > 10 else "")
        log.info("fleet threshold of rule %s fired on this host (%d hosts)", rule.id,
                 count.hosts)
        return [alert._replace(
            id=line_alert_id("fleet", rule.id, hit.line.key),
            message=f"{alert.message}\nSeen on {count.hosts} hosts within {within}: {names}",
            fields={**alert.fields, "hosts": str(count.hosts)},
        )], True

    def _unavailable(self, rule: Rule, reason: str, t: float) -> list[Alert]:
        since = self.store.down_since
        if since is None or self._announced == since:
            return []
        self._announced = since
        host = self.config.settings.hostname
        return [Alert(
            id=alert_id("fleet-unavailable", host, repr(since)),
            kind="system", rule="logwatch", severity="warning",
            title=f"logwatch on {host}: fleet unavailable",
            message=(f"Redis at {self.store.where} cannot be reached ({reason}): fleet "
                     "thresholds are off on this host until it is back; its own thresholds "
                     "and dedup still work, and other hosts' alerts may be duplicated."),
            source="logwatch", host=host, time=t, count=0, to=rule.to,
        )]
