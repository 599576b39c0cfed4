"""Resolve (``resolve = 'regex'`` or ``quiet = "10m"``): a "Resolved" follow-up for a key.

A key that alerted is an *incident* until a line matches the rule's ``resolve``
pattern, or until ``quiet`` seconds pass without a hit; then one ``resolved``
alert goes to every destination the alert went to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from logwatch.config import Config
from logwatch.models import Alert, alert_id
from logwatch.policy.tables import number, opened_by
from logwatch.rules import Rule


@dataclass(slots=True)
class Incident:
    """A key that alerted and will get a "resolved" follow-up (resolve / quiet)."""

    opener: str
    title: str
    source: str
    last: float
    #: the saved text of the fields before ``last``, which never change (made once)
    head: str = field(default="", init=False, repr=False, compare=False)

    def saved_text(self) -> str:
        """The saved row: ``encode`` of the fields (but :attr:`head`) as a dict, in their order."""
        if not (head := self.head):
            head = self.head = opened_by(self.opener, self.title, self.source)
        return f'{head},"last":{number(self.last)}}}'


def quiet_over(quiet: float, now: float) -> Callable[[Incident], bool]:
    """Whether an incident has been quiet for ``quiet`` seconds at ``now``."""
    return lambda incident: incident.last + quiet <= now


def resolved_alert(config: Config, rule: Rule, key: str, incident: Incident, when: float,
                   why: str) -> Alert:
    """The follow-up that closes ``incident``."""
    return Alert(
        id=alert_id("resolved", rule.id, key, incident.opener),
        # the rule's severity, so it reaches every channel the alert reached
        kind="resolved", rule=rule.id, severity=rule.severity,
        title=f"Resolved: {incident.title}", message=why,
        source=incident.source, host=config.settings.hostname, time=when,
        fields={"key": key} if key else {}, count=0, to=rule.to,
    )
