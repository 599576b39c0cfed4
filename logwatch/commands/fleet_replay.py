"""``logwatch test --alerts --host NAME=FILE ...``: several hosts' logs replayed as one fleet.

Each host gets its own policy (its hostname, its thresholds, dedup windows and
storms), as each ``logwatch run`` of a fleet has; their lines are merged in time
order (each host's files in the order given). The fleet's shared state lives in an
in-process :class:`~logwatch.fleet.memory.MemoryStore` on the replay's clock, so no
Redis is needed, and the decisions are the running fleet's own code:

- fleet thresholds (``fleet = { hosts, within, by }``) through
  :class:`~logwatch.fleet.policy.FleetPolicy`;
- fleet dedup through :class:`~logwatch.fleet.sending.FleetSending`, asked as a sender
  would just before sending each alert (every send succeeds at once; pacing is not
  simulated: it delays messages, it does not change them).

It prints what would reach each destination, host by host, and accounts for every hit
across the fleet: an alert or summary another host sent is counted in that host's
summary ("also seen on N hosts").
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

import logwatch.delivery.outbox as outbox
from logwatch.commands.replay import select_rules
from logwatch.commands.simulate import (
    HostReplay,
    ReplayClock,
    SimulationResult,
    first_time,
    format_alert,
    open_log,
    print_accounts,
)
from logwatch.config import Config
from logwatch.delivery.destinations.types import Outcome
from logwatch.fleet.memory import MemoryStore
from logwatch.fleet.policy import FleetPolicy
from logwatch.fleet.sending import FleetSending
from logwatch.matching import Matcher
from logwatch.models import Alert, Hit
from logwatch.policy import Policy

_SENT = Outcome("ok")


@dataclass
class FleetResult:
    """The whole fleet's result, and each host's."""

    total: SimulationResult
    hosts: dict[str, SimulationResult] = field(default_factory=dict)
    #: alerts and summaries another host's message covered (fleet dedup)
    covered: int = 0
    #: fleet thresholds that fired
    fleet_fired: int = 0


class FleetHost(HostReplay):
    """One host of the replayed fleet: its policy, and its senders' fleet decisions."""

    name: str
    sendings: dict[str, FleetSending]
    seq: Iterator[int]
    covered: int

    def emit(self, alerts: Iterable[Alert]) -> None:
        """Ask the fleet, destination by destination, as the senders would; print what goes."""
        for alert in alerts:
            sent_to: list[str] = []
            shown = alert
            for dest in alert.to:
                prepared = self.sendings[dest].sort([outbox.Row(next(self.seq), alert, 0, 0.0)])
                if prepared.rows:
                    shown = prepared.rows[0].alert
                    sent_to.append(dest)
                    self.sendings[dest].settle(prepared, prepared.rows, _SENT)
                elif any(why.startswith("fleet:") for _, why in prepared.skipped):
                    self.covered += 1
            if sent_to:
                shown = shown._replace(to=tuple(sent_to))
                self.result.alerts.append(shown)
                self.out.write(f"[{self.name}] " + format_alert(
                    shown, many=len(self.config.destinations) > 1))


def simulate_fleet(
    config: Config,
    hosts: Sequence[tuple[str, Path]],
    out: TextIO,
    *,
    rule: str | None = None,
    now: float | None = None,
) -> FleetResult:
    """Replay each host's files as one fleet; print what is sent and where every hit went.

    ``hosts`` pairs a host name with a file (a name may come several times, its files
    replayed in that order). Raises ``LogwatchError`` for an unreadable file.
    """
    wall = time.time() if now is None else now
    config = replace(config, rules=select_rules(config, rule))
    files: dict[str, list[Path]] = {}
    for name, path in hosts:
        files.setdefault(name, []).append(Path(path))
    clock = ReplayClock(wall)
    store = MemoryStore(clock)
    matcher = Matcher(config.rules, ignore=config.settings.ignore,
                      timeout=config.settings.match_timeout)
    seq = itertools.count(1)
    runs = {name: _host(config, name, store, matcher, clock, out, wall, seq) for name in files}
    clock.now = min((t for paths in files.values() if (t := _start(paths[0], wall))),
                    default=wall)
    events = heapq.merge(*(_events(runs[name], paths) for name, paths in files.items()),
                         key=lambda e: e[0])
    for t, run, hit in events:
        _advance(runs.values(), clock, t)
        if hit is not None:
            run.emit(run.policy.feed(hit))
    _advance(runs.values(), clock, None)
    return _account(config, runs, out)


def _host(config: Config, name: str, store: MemoryStore, matcher: Matcher, clock: ReplayClock,
          out: TextIO, wall: float, seq: Iterator[int]) -> FleetHost:
    own = replace(config, settings=replace(config.settings, hostname=name))
    run = FleetHost(own, Policy(own, clock, fleet=FleetPolicy(store, own)), matcher, clock,
                    out, wall)
    run.name = name
    run.sendings = {dest: FleetSending(store, name, own, dest, ()) for dest in own.destinations}
    run.seq = seq
    run.covered = 0
    return run


def _start(path: Path, wall: float) -> float | None:
    with open_log(path) as stream:
        return first_time(stream, wall)


def _events(run: FleetHost, paths: list[Path]) -> Iterator[tuple[float, FleetHost, Hit | None]]:
    for path in paths:
        with open_log(path) as stream:
            for t, hit in run.hits(path, stream):
                yield t, run, hit


def _advance(runs: Iterable[FleetHost], clock: ReplayClock, t: float | None) -> None:
    """Fire every host's timers due by ``t`` (None: all of them), in time order."""
    runs = list(runs)
    while True:
        due = [(d, i) for i, r in enumerate(runs) if (d := r.policy.next_due()) is not None]
        if not due or (t is not None and min(due)[0] > t):
            break
        when, i = min(due)
        clock.now = max(clock.now, when)
        runs[i].emit(runs[i].policy.tick(when))
    if t is not None:
        clock.now = max(clock.now, t)


def _account(config: Config, runs: dict[str, FleetHost], out: TextIO) -> FleetResult:
    """Each host's accounts, summed: the fleet's balance (one host's alone need not add up)."""
    total = SimulationResult()
    result = FleetResult(total)
    fleet_rules = {r.id for r in config.rules if r.fleet is not None}
    for name, run in runs.items():
        run.account()
        host = result.hosts[name] = run.result
        total.lines += host.lines
        total.hits.update(host.hits)
        total.resolves += host.resolves
        total.untimed += host.untimed
        total.alerts += host.alerts
        for t in (host.first, host.last):
            if t is not None:
                total.first = t if total.first is None else min(total.first, t)
                total.last = t if total.last is None else max(total.last, t)
        for dest, acc in host.accounts.items():
            sums = total.accounts.setdefault(dest, type(acc)())
            sums.hits += acc.hits
            sums.alerted += acc.alerted
            sums.summarized += acc.summarized
            sums.digested += acc.digested
            sums.below_threshold += acc.below_threshold
        result.covered += run.covered
    result.fleet_fired = sum(1 for a in total.alerts if a.kind == "alert" and a.rule in fleet_rules)
    print_accounts(total, out)
    out.write(f"fleet of {len(runs)} hosts: {result.covered} alerts or summaries covered by "
              f"another host's message (fleet dedup), {result.fleet_fired} fleet thresholds "
              "fired\n")
    return result
