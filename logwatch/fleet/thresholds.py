"""Fleet thresholds: a rule's ``fleet = { hosts, within, by }`` across the whole fleet.

Each host reports its hits per key to one Lua script, which in one step adds the
host (with the hit's time) to the key's sorted set, drops hosts not seen within
``within``, counts the distinct hosts and, when there are at least ``hosts``, sets
a "fired" mark (for ``within``) so that exactly one host queues the alert. The mark
holds that host and line, so the same host replaying the same line after a crash
fires again (the same alert id, which the outbox does not insert twice).

A host reports a key at most once per ``min(within / 20, 1 s)`` unless that report
could fire: a brute force of thousands of lines costs a handful of round trips.
When Redis is unavailable :meth:`FleetThresholds.hit` raises ``FleetUnavailable``:
the policy says so once (status and an alert) and carries on locally.
"""

from __future__ import annotations

from dataclasses import dataclass

from logwatch.fleet.keys import digest
from logwatch.fleet.link import FleetLink

#: KEYS: hosts (sorted set), fired. ARGV: host, time (ms), within (ms), hosts needed, marker.
#: -> {fired 0/1, distinct hosts, host names (when fired, up to 20)...}
HIT = """
local t, within, need = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], 'GT', t, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (t - within))
redis.call('PEXPIRE', KEYS[1], within + 60000)
local n = redis.call('ZCARD', KEYS[1])
local fired = redis.call('GET', KEYS[2])
if fired and fired ~= ARGV[5] then return {0, n} end
if fired or n >= need then
  if not fired then redis.call('SET', KEYS[2], ARGV[5], 'PX', within) end
  local out = {1, n}
  for _, host in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, 19)) do out[#out + 1] = host end
  return out
end
return {0, n}
"""

#: reports remembered to skip repeats; forgotten all at once when full
MAX_RECENT = 10_000


@dataclass(frozen=True, slots=True)
class FleetCount:
    """The fleet's answer for one hit: fired (this host queues the alert) and who saw it."""

    fired: bool
    hosts: int
    names: tuple[str, ...] = ()


class FleetThresholds:
    """Reports this host's hits; may raise ``FleetUnavailable`` (the caller fails open)."""

    def __init__(self, link: FleetLink) -> None:
        self.link = link
        self.host = link.host
        self._hit = link.script("fleet-hit", HIT)
        self._recent: dict[tuple[str, str], float] = {}

    def hit(self, rule: str, key: str, t: float, within: float, hosts: int,
            line_key: str) -> FleetCount | None:
        """Count this host for ``rule``/``key`` at event time ``t``; None if not reported."""
        last = self._recent.get((rule, key))
        if last is not None and 0 <= t - last < min(within / 20, 1.0):
            return None
        name = digest(rule, key)
        ns = self.link.namespace
        reply = self._hit([f"{ns}:fleet:{name}", f"{ns}:fired:{name}"],
                          [self.host, int(t * 1000), int(within * 1000), hosts,
                           f"{self.host}|{line_key}"])
        fired = int(reply[0]) == 1
        if fired:
            self._recent.pop((rule, key), None)
        else:
            if len(self._recent) >= MAX_RECENT:
                self._recent.clear()
            self._recent[(rule, key)] = t
        names = tuple(n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)
                      for n in reply[2:])
        return FleetCount(fired, int(reply[1]), names)
