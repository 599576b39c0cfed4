"""The fleet's shared state in-process, for replaying several hosts' logs as one fleet.

:class:`MemoryStore` answers as :class:`~logwatch.fleet.redisstore.RedisStore`'s Lua
scripts do (``tests/fleet/test_store.py`` runs the same calls against both), on a
clock it is given: a replay's clock, which the logs' timestamps move. Entries expire
as Redis keys would, and expired ones are swept now and then, so a long replay stays
bounded by the keys live at one time.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from logwatch.fleet.claims import KEPT, MAX_TALLY, taken_name
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

#: calls between sweeps of expired entries
SWEEP_EVERY = 10_000
#: as the Lua scripts: a tally counts at most this many hosts
MAX_HOSTS = 10_000


@dataclass
class _Entry:
    value: str
    expires: int  # ms on the store's clock


@dataclass
class _Tally:
    hits: dict[str, int] = field(default_factory=dict)
    expires: int = 0


@dataclass
class _Hosts:
    seen: dict[str, int] = field(default_factory=dict)  # host -> last hit time (ms)
    expires: int = 0


class MemoryStore:
    """:class:`~logwatch.fleet.store.FleetStore` in a dict; ``clock()`` is seconds."""

    where = "in-process (replay)"
    down_since: float | None = None
    _slots = itertools.count()

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._strings: dict[str, _Entry] = {}
        self._tallies: dict[str, _Tally] = {}
        self._hosts: dict[str, _Hosts] = {}
        self._windows: dict[str, dict[str, int]] = {}  # member -> time (ms)
        self._calls = 0

    # -- the three operations --------------------------------------------------------

    def hit(self, host: str, name: str, t: float, within: float, need: int,
            marker: str) -> FleetCount:
        """Fleet thresholds: see :mod:`~logwatch.fleet.store`."""
        now = self._now()
        t_ms, within_ms = int(t * 1000), int(within * 1000)
        hosts = self._hosts.setdefault(name, _Hosts())
        hosts.seen[host] = max(hosts.seen.get(host, t_ms), t_ms)
        hosts.seen = {h: s for h, s in hosts.seen.items() if s >= t_ms - within_ms}
        hosts.expires = now + within_ms + 60_000
        n = len(hosts.seen)
        fired = self._get(f"fired:{name}", now)
        if fired is not None and fired != marker:
            return FleetCount(False, n)
        if fired is None and n < need:
            return FleetCount(False, n)
        if fired is None:
            self._strings[f"fired:{name}"] = _Entry(marker, now + within_ms)
        names = sorted(hosts.seen, key=lambda h: (hosts.seen[h], h), reverse=True)[:20]
        return FleetCount(True, n, tuple(names))

    def begin(self, host: str, pace: Pace, asks: Sequence[Ask], lease: float) -> Begun:
        """Pacing wait, claims in order, and a slot if something is to be sent now."""
        now = self._now()
        wait = self._pace_wait(pace, now)
        lease_ms = int(lease * 1000)
        answers: list[Answer] = []
        send = False
        for ask in asks:
            if ask.kind == "plain":
                answers.append(Answer("send"))
                send = True
                continue
            answer = (self._claim if ask.kind == "alert" else self._summary)(
                host, ask, now, lease_ms, wait)
            answers.append(answer)
            if answer.verdict == "wait":
                break
            send = send or (answer.verdict == "own" and (
                ask.kind == "alert" or (wait == 0 and (ask.hits > 0 or bool(answer.others)))))
            send = send or (answer.verdict == "none" and ask.hits > 0)
        slot = ""
        if send and wait == 0:
            slot = f"{host}:{next(self._slots)}"
            for w in pace.windows:
                self._windows.setdefault(self._window_key(pace, w.limit, w.per), {})[slot] = now
        return Begun(max(wait, 1) / 1000 if wait > 0 else 0.0, slot, tuple(answers))

    def end(self, host: str, pace: Pace, slot: str, pause: float,
            settles: Sequence[Settle]) -> None:
        """The request ended: move ``slot``, share ``pause``, confirm or release claims."""
        now = self._now()
        if slot:
            for w in pace.windows:
                window = self._windows.get(self._window_key(pace, w.limit, w.per), {})
                if slot in window:
                    window[slot] = now
        if (pause_ms := clamp_pause(pause)) > 0:
            block = f"block:{pace.identity}"
            until = now + pause_ms
            if until > int(self._get(block, now) or 0):
                self._strings[block] = _Entry(str(until), now + pause_ms + 1000)
        for s in settles:
            key = f"claim:{s.name}"
            value = self._get(key, now)
            if s.confirmed:
                if value == f"p|{host}":
                    self._strings[key] = _Entry(f"s|{host}", now + max(int(s.hold * 1000), 1))
            elif value is not None and value[2:] == host:
                del self._strings[key]

    # -- claims ------------------------------------------------------------------------

    def _claim(self, host: str, ask: Ask, now: int, lease_ms: int, wait: int) -> Answer:
        key = f"claim:{ask.name}"
        value = self._get(key, now)
        if value is None:
            self._strings[key] = _Entry(f"p|{host}", now + lease_ms)
            return Answer("own", host, lease_ms / 1000)
        entry = self._strings[key]
        state, owner = value[:1], value[2:]
        if owner == host:
            if state == "p":
                entry.expires = now + lease_ms
            return Answer("own", host, (entry.expires - now) / 1000)
        if state == "p":
            return Answer("wait", owner, (entry.expires - now) / 1000)
        self._count(ask.name, host, ask.hits, entry, now)
        return Answer("counted", owner, (entry.expires - now) / 1000)

    def _summary(self, host: str, ask: Ask, now: int, lease_ms: int, wait: int) -> Answer:
        taken = taken_name(ask.name, host, ask.token) if ask.token else ""
        if taken and self._get(f"took:{taken}", now) == host:
            return self._taken_again(host, taken, now, wait)
        key = f"claim:{ask.name}"
        value = self._get(key, now)
        if value is None:
            return Answer("none")
        entry = self._strings[key]
        owner, ttl = value[2:], (entry.expires - now) / 1000
        if owner == host:
            if wait > 0:
                return Answer("own", host, ttl)
            tally = self._tally(ask.name, now)
            del self._strings[key]
            handed = self._tallies.pop(ask.name, None)
            if taken:
                self._keep(host, taken, handed, now)
            return Answer("own", host, ttl, sort_tally(list(tally.hits.items()), MAX_TALLY))
        if ask.hits > 0:
            self._count(ask.name, host, ask.hits, entry, now)
        return Answer("counted", owner, ttl)

    def _count(self, name: str, host: str, hits: int, claim: _Entry, now: int) -> None:
        """Add ``host``'s ``hits`` to the owner's tally (at most :data:`MAX_HOSTS` hosts)."""
        tally = self._tally(name, now)
        if len(tally.hits) < MAX_HOSTS or host in tally.hits:
            tally.hits[host] = tally.hits.get(host, 0) + hits
            tally.expires = max(claim.expires, now + 1000)

    def _keep(self, host: str, taken: str, tally: _Tally | None, now: int) -> None:
        """The tally handed to ``host``'s summary, kept for the same summary to ask again."""
        kept_ms = int(KEPT * 1000)
        self._strings[f"took:{taken}"] = _Entry(host, now + kept_ms)
        self._tallies.pop(f"kept:{taken}", None)
        if tally is not None and tally.expires > now:
            self._tallies[f"kept:{taken}"] = replace(tally, expires=now + kept_ms)

    def _taken_again(self, host: str, taken: str, now: int, wait: int) -> Answer:
        """The same summary asks again: what it was handed (when it can go now)."""
        ttl = (self._strings[f"took:{taken}"].expires - now) / 1000
        if wait > 0:
            return Answer("own", host, ttl)
        kept = self._tallies.get(f"kept:{taken}")
        hits = kept.hits if kept is not None and kept.expires > now else {}
        return Answer("own", host, ttl, sort_tally(list(hits.items()), MAX_TALLY))

    # -- pacing ------------------------------------------------------------------------

    def _pace_wait(self, pace: Pace, now: int) -> int:
        wait = max(int(self._get(f"block:{pace.identity}", now) or 0) - now, 0)
        for w in pace.windows:
            per = int(w.per * 1000)
            key = self._window_key(pace, w.limit, w.per)
            window = {m: s for m, s in self._windows.get(key, {}).items() if s > now - per}
            self._windows[key] = window
            if len(window) >= w.limit:
                oldest = sorted(window.values())[len(window) - w.limit]
                wait = max(wait, oldest + per - now)
        return wait

    @staticmethod
    def _window_key(pace: Pace, limit: int, per: float) -> str:
        return f"pace:{pace.identity}:{limit}/{per:g}"

    # -- keys --------------------------------------------------------------------------

    def _now(self) -> int:
        self._calls += 1
        now = int(self.clock() * 1000)
        if self._calls % SWEEP_EVERY == 0:
            self._sweep(now)
        return now

    def _get(self, key: str, now: int) -> str | None:
        entry = self._strings.get(key)
        if entry is None:
            return None
        if entry.expires <= now:
            del self._strings[key]
            return None
        return entry.value

    def _tally(self, name: str, now: int) -> _Tally:
        tally = self._tallies.get(name)
        if tally is None or tally.expires <= now:
            tally = self._tallies[name] = _Tally()
        return tally

    def _sweep(self, now: int) -> None:
        """Forget what has expired (Redis does it by itself)."""
        self._strings = {k: e for k, e in self._strings.items() if e.expires > now}
        self._tallies = {k: t for k, t in self._tallies.items() if t.expires > now}
        self._hosts = {k: h for k, h in self._hosts.items() if h.expires > now}
        self._windows = {k: w for k, w in self._windows.items() if w}
