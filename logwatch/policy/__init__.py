"""Policy: which hits become alerts, and which are held back and counted.

``Policy.feed(hit)`` and ``Policy.tick(now)`` return the alerts to queue. The
steps live in their own modules around the one :class:`Policy`:
:mod:`~logwatch.policy.threshold` (N hits within T), :mod:`~logwatch.policy.dedup`
(one alert per key per window, then a summary), :mod:`~logwatch.policy.storm`
(digests instead of floods), :mod:`~logwatch.policy.resolve` ("Resolved"
follow-ups); :mod:`~logwatch.policy.tables` holds the bounded live keys they share,
:mod:`~logwatch.policy.render` the wording.
"""

from logwatch.policy.policy import NS, STATUS_NS, Policy
from logwatch.policy.render import clock_span, clock_time, render_alert, template_values

__all__ = ["NS", "STATUS_NS", "Policy", "clock_span", "clock_time", "render_alert",
           "template_values"]
