"""Fleet dedup: the same rule and key on several hosts is one message that counts the hosts.

A claim is taken when a sender is about to send an alert of a rule with ``dedup``
(not when the hit happens), on a key built from the destination's identity, the
rule and the dedup key (hashed). States of the claim (a Redis string):

    p|HOST   HOST is sending (a short lease: if it crashes, the lease ends and
             another host takes the claim and sends)
    s|HOST   HOST sent it; until the dedup window ends, other hosts add their
             hits to the claim's tally (a hash host -> hits) instead of sending

The owner's dedup summary, at the end of its window, takes the tally and closes the
claim: "also seen on 19 hosts (web-02, web-03, ...)". A host whose own summary
comes after that sends it (duplicates possible, counted). When Redis is
unavailable every host sends (fail open: nothing is lost, duplicates are counted).
Redis holds the host names and counts only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from logwatch.fleet.keys import digest
from logwatch.fleet.link import FleetLink

#: how long a claim waits for its owner's answer before another host may take it
LEASE = 30.0
#: a claim outlives its dedup window by this much (the owner's summary comes at its end)
GRACE = 120.0
#: hosts named in a summary; the rest is "and N more"
MAX_NAMED = 10
MAX_TALLY = 10_000

#: KEYS: claim, tally. ARGV: host, lease (ms), hits. -> {verdict, owner, ttl ms}
CLAIM = """
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], 'p|' .. ARGV[1], 'PX', ARGV[2])
  return {'own', ARGV[1], tonumber(ARGV[2])}
end
local state, owner = string.sub(v, 1, 1), string.sub(v, 3)
local ttl = redis.call('PTTL', KEYS[1])
if owner == ARGV[1] then
  if state == 'p' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
  return {'own', owner, ttl}
end
if state == 'p' then return {'wait', owner, ttl} end
if redis.call('HLEN', KEYS[2]) < 10000 or redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[2], ARGV[1], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], math.max(ttl, 1000))
end
return {'counted', owner, ttl}
"""

#: KEYS: claim. ARGV: host, window (ms). The owner's send worked: hold the key for the window.
CONFIRM = """
if redis.call('GET', KEYS[1]) == 'p|' .. ARGV[1] then
  redis.call('SET', KEYS[1], 's|' .. ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

#: KEYS: claim. ARGV: host. The owner could not send (dead row): let another host try.
RELEASE = """
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 3) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
"""

#: KEYS: claim, tally. ARGV: host, hits.
#: -> {'none'} | {'counted', owner} | {'own', host1, hits1, host2, hits2, ...}
SUMMARY = """
local v = redis.call('GET', KEYS[1])
if not v then return {'none'} end
local owner = string.sub(v, 3)
if owner == ARGV[1] then
  local tally = redis.call('HGETALL', KEYS[2])
  redis.call('DEL', KEYS[1], KEYS[2])
  local out = {'own'}
  for i = 1, #tally do out[#out + 1] = tally[i] end
  return out
end
if tonumber(ARGV[2]) > 0 then
  redis.call('HINCRBY', KEYS[2], ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], math.max(redis.call('PTTL', KEYS[1]), 1000))
end
return {'counted', owner}
"""

Verdict = Literal["own", "wait", "counted"]


@dataclass(frozen=True, slots=True)
class Claim:
    """What a claim attempt found: send it (``own``), wait for its owner, or counted."""

    verdict: Verdict
    owner: str
    #: how long the claim lasts (seconds): for ``wait``, when the owner's lease ends
    ttl: float


@dataclass(frozen=True, slots=True)
class Tally:
    """What a dedup summary learns from the fleet."""

    #: ``none``: no claim (never claimed, expired, or Redis was down); ``own``: this host
    #: sent the alert and ``others`` are the hits other hosts counted into it
    verdict: Literal["none", "own", "counted"]
    owner: str = ""
    others: tuple[tuple[str, int], ...] = ()

    @property
    def hits(self) -> int:
        """Hits the other hosts counted."""
        return sum(n for _, n in self.others)

    def describe(self) -> str:
        """``also seen on 3 hosts (web-2, web-3, web-4): 7 hits``."""
        names = [host for host, _ in self.others[:MAX_NAMED]]
        more = len(self.others) - len(names)
        listed = ", ".join(names) + (f", and {more} more" if more else "")
        hosts = "1 host" if len(self.others) == 1 else f"{len(self.others)} hosts"
        hits = "1 hit" if self.hits == 1 else f"{self.hits} hits"
        return f"also seen on {hosts} ({listed}): {hits}"


class FleetClaims:
    """Claims for one host; every method may raise ``FleetUnavailable`` (fail open)."""

    def __init__(self, link: FleetLink, *, lease: float = LEASE) -> None:
        self.link = link
        self.host = link.host
        self.lease_ms = int(lease * 1000)
        self._claim = link.script("claim", CLAIM)
        self._confirm = link.script("claim-confirm", CONFIRM)
        self._release = link.script("claim-release", RELEASE)
        self._summary = link.script("claim-summary", SUMMARY)

    def keys(self, name: str) -> list[str]:
        """The claim key and its tally, from :func:`claim_name`."""
        ns = self.link.namespace
        return [f"{ns}:claim:{name}", f"{ns}:tally:{name}"]

    def claim(self, name: str, hits: int) -> Claim:
        """Take the claim ``name`` or learn who has it (counting ``hits`` into theirs)."""
        verdict, owner, ttl = self._claim(self.keys(name), [self.host, self.lease_ms,
                                                            max(int(hits), 1)])
        return Claim(_text(verdict), _text(owner), max(int(ttl), 0) / 1000)  # type: ignore[arg-type]

    def confirm(self, name: str, window: float) -> None:
        """Our send of ``name`` worked: other hosts count into it for ``window`` + grace."""
        self._confirm(self.keys(name)[:1], [self.host, int((window + GRACE) * 1000)])

    def release(self, name: str) -> None:
        """Our send of ``name`` failed for good: another host may send it."""
        self._release(self.keys(name)[:1], [self.host])

    def summary(self, name: str, hits: int) -> Tally:
        """At our dedup window's end: the tally if we own the claim (closing it), else count."""
        reply = self._summary(self.keys(name), [self.host, max(int(hits), 0)])
        verdict = _text(reply[0])
        if verdict == "own":
            pairs = [(_text(reply[i]), _count(reply[i + 1])) for i in range(1, len(reply) - 1, 2)]
            pairs.sort(key=lambda p: (-p[1], p[0]))
            return Tally("own", self.host, tuple(pairs[:MAX_TALLY]))
        if verdict == "counted":
            return Tally("counted", _text(reply[1]))
        return Tally("none")


def claim_name(identity: str, rule: str, key: str) -> str:
    """The hashed name of the claim for ``rule`` and dedup ``key`` at destination ``identity``."""
    return digest(identity, rule, key)


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _count(value: object) -> int:
    try:
        return max(int(_text(value)), 0)
    except ValueError:
        return 0
