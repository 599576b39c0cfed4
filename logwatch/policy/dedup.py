"""Dedup windows (``dedup = { by, for }``): after an alert, the same key is held back and counted.

While a key's window is open its hits are *suppressed* and counted; when the window
ends, a timer (not the next line) emits one ``summary`` alert whose ``count`` is the
number of hits held back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from logwatch.config import Config
from logwatch.models import Alert, alert_id
from logwatch.policy.render import clock_span
from logwatch.policy.tables import number, opened_by, text
from logwatch.rules import Rule

#: the sample line kept with a dedup window (for the summary) is cut to this
MAX_SAMPLE = 500
#: a window's ``first`` and ``last`` until it holds a hit back (this very object: see
#: :meth:`Suppression.saved_text`)
NO_TIME = 0.0
#: the end of a window's saved row while it has held nothing back (most windows: a new
#: key each time), as the general form writes it
_NOTHING_HELD = f',"suppressed":0,"first":{NO_TIME!r},"last":{NO_TIME!r},"line":""}}'


@dataclass(slots=True)
class Suppression:
    """An open dedup window: the alert that opened it and the hits held back since."""

    opener: str
    title: str
    source: str
    until: float
    suppressed: int = 0
    first: float = NO_TIME
    last: float = NO_TIME
    line: str = ""
    #: the saved text of the fields before ``suppressed``, which never change (made once)
    head: str = field(default="", init=False, repr=False, compare=False)

    def count(self, line: str, t: float) -> None:
        """One more hit held back at ``t``; ``line`` is kept as the summary's sample."""
        if not self.suppressed:
            self.first = t
        self.suppressed += 1
        self.last = t
        self.line = line[:MAX_SAMPLE]

    def saved_text(self) -> str:
        """The saved row: ``encode`` of the fields (but :attr:`head`) as a dict, in their order.

        A busy key's row is written again at each commit, its sample line and count
        changed; what opened the window is encoded only the first time. A window that has
        held nothing back ends as every such one does (its times are still :data:`NO_TIME`
        itself, whose text is known: a time of the same value from elsewhere takes the
        general form, which writes it the same).
        """
        if not (head := self.head):
            head = self.head = (f'{opened_by(self.opener, self.title, self.source)},'
                                f'"until":{number(self.until)}')
        if (self.last is NO_TIME and self.first is NO_TIME and self.line == ""
                and type(held := self.suppressed) is int and not held):
            return head + _NOTHING_HELD
        return (f'{head},"suppressed":{self.suppressed},"first":{number(self.first)},'
                f'"last":{number(self.last)},"line":{text(self.line)}}}')


def summary_alert(config: Config, rule: Rule, key: str, held: Suppression, when: float) -> Alert:
    """The summary of what ``held`` suppressed, at the end of its window ``when``."""
    n = held.suppressed
    first, last = clock_span(held.first, held.last)
    between = f"at {first}" if first == last else f"between {first} and {last}"
    return Alert(
        id=alert_id("summary", rule.id, key, held.opener),
        kind="summary", rule=rule.id, severity=rule.severity,
        title=f"{n} more '{held.title}' suppressed",
        message=f"{n} more '{held.title}' suppressed {between}",
        source=held.source, host=config.settings.hostname, time=when,
        line=held.line, fields={"key": key} if key else {}, count=n, to=rule.to,
    )
