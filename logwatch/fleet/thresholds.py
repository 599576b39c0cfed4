"""Fleet thresholds: a rule's ``fleet = { hosts, within, by }`` across the whole fleet.

Each host reports its hits per key to the :class:`~logwatch.fleet.store.FleetStore`
(``hit``: one atomic step that adds the host, drops hosts not seen within ``within``,
counts the distinct hosts and, at ``hosts``, sets a "fired" mark so that exactly
one host queues the alert). The mark holds that host and line, so the same host
replaying the same line after a crash fires again (the same alert id, which the
outbox does not insert twice).

A host reports a key at most once per ``min(within / 20, 1 s)`` unless that report
could fire: a brute force of thousands of lines costs a handful of round trips.
When Redis is unavailable :meth:`FleetThresholds.hit` raises ``FleetUnavailable``:
the policy says so once (status and an alert) and carries on locally.
"""

from __future__ import annotations

from logwatch.fleet.keys import digest
from logwatch.fleet.store import FleetCount, FleetStore

#: reports remembered to skip repeats; forgotten all at once when full
MAX_RECENT = 10_000


class FleetThresholds:
    """Reports one host's hits; may raise ``FleetUnavailable`` (the caller fails open)."""

    def __init__(self, store: FleetStore, host: str) -> None:
        self.store = store
        self.host = host
        self._recent: dict[tuple[str, str], float] = {}

    def hit(self, rule: str, key: str, t: float, within: float, hosts: int,
            line_key: str) -> FleetCount | None:
        """Count this host for ``rule``/``key`` at event time ``t``; None if not reported."""
        last = self._recent.get((rule, key))
        if last is not None and 0 <= t - last < min(within / 20, 1.0):
            return None
        count = self.store.hit(self.host, digest(rule, key), t, within, hosts,
                               f"{self.host}|{line_key}")
        if count.fired:
            self._recent.pop((rule, key), None)
        else:
            if len(self._recent) >= MAX_RECENT:
                self._recent.clear()
            self._recent[(rule, key)] = t
        return count
