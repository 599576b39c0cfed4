"""How the policy words what it sends: template values, alerts for hits, times and counts."""

from __future__ import annotations

import time
from collections.abc import Mapping

from logwatch.config import Config
from logwatch.models import Alert, Hit, line_alert_id
from logwatch.rules import Rule

#: what :func:`template_values` sets besides the rule's fields (it overrides fields so named)
BUILTIN_VALUES = frozenset({"host", "rule", "source", "line", "severity"})


def template_values(config: Config, rule: Rule, hit: Hit, **extra: object) -> dict[str, object]:
    """What ``{name}`` may refer to in a rule's templates for ``hit``."""
    return {
        **hit.fields,
        "host": config.settings.hostname,
        "rule": rule.id,
        "source": hit.line.source,
        "line": hit.line.text,
        "severity": rule.severity,
        **extra,
    }


def render_alert(
    config: Config, rule: Rule, hit: Hit, *, now: float, count: int = 1,
    extra: Mapping[str, str] | None = None,
) -> Alert:
    """The alert for ``hit`` with the rule's title and message filled in."""
    values = template_values(config, rule, hit, count=count, **(extra or {}))
    return hit_alert(config, rule, hit, rule.title.render(values), rule.message.render(values),
                     now=now, count=count, to=rule.to)


def hit_alert(config: Config, rule: Rule, hit: Hit, title: str, message: str, *,
              now: float, count: int, to: tuple[str, ...]) -> Alert:
    """The alert ``hit`` fires, its title and message already rendered."""
    return Alert(
        id=line_alert_id("alert", rule.id, hit.line.key),
        kind="alert",
        rule=rule.id,
        severity=rule.severity,
        title=title,
        message=message,
        source=hit.line.source,
        host=config.settings.hostname,
        time=now,
        line=hit.line.text,
        fields=dict(hit.fields),
        count=count,
        to=to,
    )


def clock_time(t: float) -> str:
    """``14:02:07``, local time, as a sysadmin reads the logs."""
    return time.strftime("%H:%M:%S", time.localtime(t))


def clock_span(first: float, last: float) -> tuple[str, str]:
    """Both ends of a span, as short as reads well: minutes for long spans, dates if needed."""
    fmt = "%H:%M" if last - first >= 600 else "%H:%M:%S"
    a, b = time.localtime(first), time.localtime(last)
    if (a.tm_year, a.tm_yday) != (b.tm_year, b.tm_yday):
        fmt = "%b %d " + fmt
    return time.strftime(fmt, a), time.strftime(fmt, b)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
