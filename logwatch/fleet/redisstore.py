"""The fleet's shared state on Redis: three Lua scripts, one round trip each.

See :mod:`~logwatch.fleet.store` for what ``hit``, ``begin`` and ``end`` do;
:class:`~logwatch.fleet.memory.MemoryStore` does the same in-process (a test checks
they agree). A send costs two round trips: ``begin`` (pacing wait, claims and slot
in one script) and ``end`` (slot moved, pause shared, claims confirmed or released).

Pacing runs on Redis' clock (hosts' clocks may differ); a sliding log per window
rather than GCRA, as the services count a sliding window and GCRA's burst would let
a sixth request into a window that already holds five. Keys are
``NAMESPACE:KIND:HASH``: no URL, token or log text reaches Redis.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from logwatch.fleet.claims import KEPT, MAX_TALLY, taken_name
from logwatch.fleet.link import FleetLink
from logwatch.fleet.store import (
    Answer,
    Ask,
    Begun,
    FleetCount,
    Pace,
    Settle,
    clamp_pause,
    sort_tally,
)

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

#: KEYS: block, window 1..n, then claim and tally of each claimed ask, and for a summary
#: also its took (the host, once the summary took the tally) and kept (that tally), both
#: named by claim, host and token.
#: ARGV: host, lease (ms), slot member, n, limit and per (ms) of each window, kept (ms),
#: then kind, hits and token of each ask.
#: -> {pace wait ms, slot or '', {verdict, owner, ttl ms, tally...}...}
BEGIN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local host, lease, nw = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[4])
local wait = 0
local blocked = tonumber(redis.call('GET', KEYS[1]) or '0')
if blocked > now then wait = blocked - now end
for i = 1, nw do
  local key, limit, per = KEYS[1 + i], tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - per)
  local n = redis.call('ZCARD', key)
  if n >= limit then
    local oldest = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + per - now)
  end
end
-- this host's hits into the owner's tally, which names at most 10,000 hosts
local function count(tally, hits, ttl)
  if redis.call('HLEN', tally) < 10000 or redis.call('HEXISTS', tally, host) == 1 then
    redis.call('HINCRBY', tally, host, hits)
    redis.call('PEXPIRE', tally, math.max(ttl, 1000))
  end
end
local out, send, k = {wait, ''}, false, 1 + nw
local keep = tonumber(ARGV[5 + 2 * nw])
for a = 6 + 2 * nw, #ARGV, 3 do
  local kind, hits, token = ARGV[a], tonumber(ARGV[a + 1]), ARGV[a + 2]
  local reply
  if kind == 'plain' then
    reply, send = {'send', '', 0}, true
  else
    local claim, tally, took, kept = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
    k = k + (kind == 'summary' and 4 or 2)
    local v = redis.call('GET', claim)
    local state, owner = '', ''
    if v then state, owner = string.sub(v, 1, 1), string.sub(v, 3) end
    local ttl = v and redis.call('PTTL', claim) or 0
    if kind == 'alert' then
      if not v then
        redis.call('SET', claim, 'p|' .. host, 'PX', lease)
        reply, send = {'own', host, lease}, true
      elseif owner == host then
        if state == 'p' then redis.call('PEXPIRE', claim, lease) ttl = lease end
        reply, send = {'own', host, ttl}, true
      elseif state == 'p' then
        out[#out + 1] = {'wait', owner, ttl}
        break
      else
        count(tally, hits, ttl)
        reply = {'counted', owner, ttl}
      end
    elseif token ~= '' and redis.call('GET', took) == host then
      reply = {'own', host, redis.call('PTTL', took)}
      if wait == 0 then
        for _, x in ipairs(redis.call('HGETALL', kept)) do reply[#reply + 1] = x end
        send = send or hits > 0 or #reply > 3
      end
    elseif not v then
      reply, send = {'none', '', 0}, send or hits > 0
    elseif owner == host then
      reply = {'own', host, ttl}
      if wait == 0 then
        for _, x in ipairs(redis.call('HGETALL', tally)) do reply[#reply + 1] = x end
        redis.call('DEL', claim)
        if token == '' then
          redis.call('DEL', tally)
        else
          redis.call('SET', took, host, 'PX', keep)
          redis.call('DEL', kept)
          if redis.call('EXISTS', tally) == 1 then
            redis.call('RENAME', tally, kept)
            redis.call('PEXPIRE', kept, keep)
          end
        end
        send = send or hits > 0 or #reply > 3
      end
    else
      if hits > 0 then count(tally, hits, ttl) end
      reply = {'counted', owner, ttl}
    end
  end
  out[#out + 1] = reply
end
if send and wait == 0 then
  out[2] = ARGV[3]
  for i = 1, nw do
    redis.call('ZADD', KEYS[1 + i], now, ARGV[3])
    redis.call('PEXPIRE', KEYS[1 + i], tonumber(ARGV[4 + 2 * i]) * 2 + 1000)
  end
end
return out
"""

#: KEYS: block, window 1..n, then each settled claim. ARGV: host, slot ('' for none),
#: pause (ms, 0 for none), n, then 'c' (confirm) with hold (ms) or 'r' (release) per claim.
END = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local host, nw = ARGV[1], tonumber(ARGV[4])
if ARGV[2] ~= '' then
  for i = 1, nw do redis.call('ZADD', KEYS[1 + i], 'XX', now, ARGV[2]) end
end
local pause = tonumber(ARGV[3])
if pause > 0 then
  local untilms = now + pause
  if untilms > tonumber(redis.call('GET', KEYS[1]) or '0') then
    redis.call('SET', KEYS[1], untilms, 'PX', pause + 1000)
  end
end
for j = 1, #KEYS - 1 - nw do
  local claim, action = KEYS[1 + nw + j], ARGV[3 + 2 * j]
  local v = redis.call('GET', claim)
  if action == 'c' then
    if v == 'p|' .. host then redis.call('SET', claim, 's|' .. host, 'PX', ARGV[4 + 2 * j]) end
  elseif v and string.sub(v, 3) == host then
    redis.call('DEL', claim)
  end
end
return 0
"""


class RedisStore:
    """:class:`~logwatch.fleet.store.FleetStore` on the fleet's Redis, through a link."""

    _slots = itertools.count()

    def __init__(self, link: FleetLink) -> None:
        self.link = link
        self.namespace = link.namespace
        self._hit = link.script("fleet-hit", HIT)
        self._begin = link.script("send-begin", BEGIN)
        self._end = link.script("send-end", END)

    @property
    def where(self) -> str:
        """The Redis URL without credentials."""
        return self.link.settings.where

    @property
    def down_since(self) -> float | None:
        """Since when the link has been down."""
        return self.link.down_since

    def hit(self, host: str, name: str, t: float, within: float, need: int,
            marker: str) -> FleetCount:
        """Fleet thresholds: see :mod:`~logwatch.fleet.store`."""
        ns = self.namespace
        reply = self._hit([f"{ns}:fleet:{name}", f"{ns}:fired:{name}"],
                          [host, int(t * 1000), int(within * 1000), need, marker])
        return FleetCount(int(reply[0]) == 1, int(reply[1]), tuple(_text(n) for n in reply[2:]))

    def begin(self, host: str, pace: Pace, asks: Sequence[Ask], lease: float) -> Begun:
        """Pacing wait, claims and slot in one round trip."""
        keys = self._pace_keys(pace)
        args: list[Any] = [host, int(lease * 1000), f"{host}:{next(self._slots)}",
                           len(pace.windows), *self._limits(pace), int(KEPT * 1000)]
        for ask in asks:
            if ask.kind != "plain":
                keys += self._claim_keys(ask.name)
            if ask.kind == "summary":
                taken = taken_name(ask.name, host, ask.token)
                keys += [f"{self.namespace}:took:{taken}", f"{self.namespace}:kept:{taken}"]
            args += [ask.kind, max(int(ask.hits), 0), ask.token]
        reply = self._begin(keys, args)
        wait_ms = int(reply[0])
        return Begun(max(wait_ms, 1) / 1000 if wait_ms > 0 else 0.0, _text(reply[1]),
                     tuple(_answer(r) for r in reply[2:]))

    def end(self, host: str, pace: Pace, slot: str, pause: float,
            settles: Sequence[Settle]) -> None:
        """Slot moved, pause shared, claims confirmed or released, in one round trip."""
        keys = self._pace_keys(pace)
        args: list[Any] = [host, slot, clamp_pause(pause), len(pace.windows)]
        for s in settles:
            keys.append(self._claim_keys(s.name)[0])
            args += ["c", max(int(s.hold * 1000), 1)] if s.confirmed else ["r", 0]
        self._end(keys, args)

    def _pace_keys(self, pace: Pace) -> list[str]:
        ns, identity = self.namespace, pace.identity
        return [f"{ns}:block:{identity}"] + [
            f"{ns}:pace:{identity}:{w.limit}/{w.per:g}" for w in pace.windows]

    @staticmethod
    def _limits(pace: Pace) -> list[int]:
        return [v for w in pace.windows for v in (w.limit, int(w.per * 1000))]

    def _claim_keys(self, name: str) -> list[str]:
        return [f"{self.namespace}:claim:{name}", f"{self.namespace}:tally:{name}"]


def _answer(reply: list[Any]) -> Answer:
    verdict = _text(reply[0])
    pairs = [(_text(reply[i]), _count(reply[i + 1])) for i in range(3, len(reply) - 1, 2)]
    return Answer(verdict, _text(reply[1]), max(int(reply[2]), 0) / 1000,  # type: ignore[arg-type]
                  sort_tally(pairs, MAX_TALLY))


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _count(value: object) -> int:
    try:
        return max(int(_text(value)), 0)
    except ValueError:
        return 0
