"""Fleet thresholds, on a real Redis and in-process: distinct hosts within a window, fired once."""

from __future__ import annotations

from collections.abc import Callable

from logwatch.fleet.link import FleetLink
from logwatch.fleet.redisstore import RedisStore
from logwatch.fleet.store import FleetStore
from logwatch.fleet.thresholds import FleetThresholds

T0 = 1_700_000_000.0


def report(hosts: list[FleetThresholds], t: float, *, key: str = "203.0.113.7",
           need: int = 10) -> list[bool]:
    """Each host reports one hit at ``t``; which ones fired."""
    out = []
    for i, h in enumerate(hosts):
        count = h.hit("ssh", key, t, 600.0, need, f"stream@{i}")
        out.append(bool(count and count.fired))
    return out


def test_fires_once_at_the_tenth_host(store: FleetStore) -> None:
    """Nine hosts: nothing; the tenth fires (and only it); the eleventh and twelfth do not."""
    hosts = [FleetThresholds(store, f"web-{i:02d}") for i in range(12)]
    fired = report(hosts, T0)
    assert fired == [False] * 9 + [True, False, False]


def test_the_same_host_repeating_is_one_host(store: FleetStore) -> None:
    """Many hits from one host count it once."""
    host = FleetThresholds(store, "web-1")
    counts = [host.hit("ssh", "k", T0 + i * 2, 600.0, 2, f"s@{i}") for i in range(5)]
    assert [c.hosts for c in counts if c is not None] == [1] * 5
    assert not any(c.fired for c in counts if c is not None)


def test_hosts_older_than_within_are_dropped(store: FleetStore) -> None:
    """A host seen more than ``within`` ago no longer counts."""
    a, b, c = (FleetThresholds(store, h) for h in ("a", "b", "c"))
    assert a.hit("ssh", "k", T0, 60.0, 3, "x") is not None
    assert b.hit("ssh", "k", T0 + 30, 60.0, 3, "y") is not None
    late = c.hit("ssh", "k", T0 + 61, 60.0, 3, "z")
    assert late is not None and late.hosts == 2 and not late.fired


def test_a_replay_of_the_firing_line_fires_again(store: FleetStore) -> None:
    """After a crash before the commit, the same line fires again (same alert id downstream)."""
    hosts = [FleetThresholds(store, f"h{i}") for i in range(2)]
    assert report(hosts, T0, need=2) == [False, True]
    again = FleetThresholds(store, "h1").hit("ssh", "203.0.113.7", T0, 600.0, 2, "stream@1")
    assert again is not None and again.fired and set(again.names) == {"h0", "h1"}


def test_repeats_within_a_second_are_not_sent(make_link: Callable[..., FleetLink]) -> None:
    """A brute force of many lines costs few round trips."""
    link = make_link()
    host = FleetThresholds(RedisStore(link), link.host)
    before = link.calls
    answers = [host.hit("ssh", "k", T0 + i / 1000, 600.0, 10, f"s@{i}") for i in range(500)]
    assert link.calls - before == 1
    assert answers[0] is not None and all(a is None for a in answers[1:])
