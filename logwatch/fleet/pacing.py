"""Shared pacing: one rate limiter per webhook and per bot+chat for the whole fleet.

Each destination's windows (Discord: 5 requests per 2 s; Telegram: 1 per second per
chat, 20 per minute per group) become sorted sets in Redis holding the recent
requests of every host, trimmed and counted by one Lua script on Redis' own clock
(hosts' clocks may differ). A request takes a slot before it is sent and moves it
to the time the answer came (as the local :class:`~logwatch.delivery.sender.Pacer` records
the end of a request: the service saw it no later). A sliding log rather than GCRA:
the services count requests in a sliding window, and GCRA's burst would let a
sixth request into a window that already holds five.

A 429 or ``X-RateLimit-Remaining: 0`` seen by any host blocks the destination for
every host until the service's reset.

Keys are hashes of the URL or token (:func:`~logwatch.fleet.keys.destination_identity`),
never the URL. When Redis is unavailable :meth:`SharedPacer.acquire` raises
:class:`~logwatch.fleet.link.FleetUnavailable` and the sender paces itself alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from logwatch.delivery.destinations.types import Window
from logwatch.fleet.link import FleetLink

#: KEYS: block, window 1..n. ARGV: member, then limit and per (ms) of each window.
#: Returns 0 (a slot was taken) or the milliseconds to wait.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local blocked = tonumber(redis.call('GET', KEYS[1]) or '0')
if blocked > now then return blocked - now end
local wait = 0
for i = 2, #KEYS do
  local limit, per = tonumber(ARGV[2 * i - 2]), tonumber(ARGV[2 * i - 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - per)
  local n = redis.call('ZCARD', KEYS[i])
  if n >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], n - limit, n - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + per - now)
  end
end
if wait > 0 then return wait end
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2 * i - 1]) * 2 + 1000)
end
return 0
"""

#: KEYS: block, window 1..n. ARGV: member, pause (ms, 0 for none).
#: The request ended now: its slot moves to now; a pause blocks every host.
FINISH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #KEYS do redis.call('ZADD', KEYS[i], 'XX', now, ARGV[1]) end
local pause = tonumber(ARGV[2])
if pause > 0 then
  local untilms = now + pause
  if untilms > tonumber(redis.call('GET', KEYS[1]) or '0') then
    redis.call('SET', KEYS[1], untilms, 'PX', pause + 1000)
  end
end
return 0
"""

#: no service asks for more than this; a bigger value in a reply is clamped
MAX_PAUSE = 3600.0


class SharedPacer:
    """The fleet-wide pace of one destination (identified by a hash, see the module doc)."""

    _ids = itertools.count()

    def __init__(self, link: FleetLink, identity: str, windows: Sequence[Window]) -> None:
        self.link = link
        ns = link.namespace
        self.keys = [f"{ns}:block:{identity}"] + [
            f"{ns}:pace:{identity}:{w.limit}/{w.per:g}" for w in windows]
        self.limits = [str(v) for w in windows for v in (w.limit, int(w.per * 1000))]
        self._acquire = link.script("pace-acquire", ACQUIRE)
        self._finish = link.script("pace-finish", FINISH)

    def acquire(self) -> tuple[float, str]:
        """``(0, slot)`` when a request may go now, else ``(seconds to wait, "")``."""
        member = f"{self.link.host}:{next(self._ids)}"
        wait_ms = int(self._acquire(self.keys, [member, *self.limits]))
        return (max(wait_ms, 1) / 1000, "") if wait_ms > 0 else (0.0, member)

    def finish(self, slot: str, pause: float | None = None) -> None:
        """The request of ``slot`` got its answer; ``pause`` blocks the fleet that long."""
        pause_ms = int(min(max(pause or 0.0, 0.0), MAX_PAUSE) * 1000)
        self._finish(self.keys, [slot or "-", pause_ms])
