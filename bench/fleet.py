"""The 20-host fleet scene: messages, HTTP 429s, and what coordination adds to an alert.

Part 1 runs N real ``logwatch run`` processes (own hostname, state_dir, log file)
against one redis-server and the test suite's fake Discord (real limits: 5
requests / 2 s per webhook), appends 30 distinct alerts to every host's log at once
and reports how many messages it took, the 429s, and the time until the last one.

Part 2 measures the Redis round trips a send adds (``begin``: pacing wait, claim and
slot in one script; ``end``: slot moved and claim confirmed in one script), from N
processes at once as N hosts would: p50 / p99 per alert, and the load average.
Waiting for a pacing slot is not counted: that wait is the point.

The hosts of part 2 send every ``--interval`` seconds (default 50 ms: 20 hosts make
400 sends/s, 160 times what one Discord webhook accepts); ``--interval 0.005`` is a
stress test in which the 20 processes alone saturate 2 cores, so it measures the
CPU queue more than Redis.

    python bench/fleet.py [--hosts 20] [--alerts 30] [--rounds 200] [--interval 0.05]
                          [--only latency|scene]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from logwatch.delivery.destinations.types import Window
from logwatch.fleet.claims import LEASE, claim_name
from logwatch.fleet.link import FleetLink
from logwatch.fleet.redisstore import RedisStore
from logwatch.fleet.settings import FleetSettings
from logwatch.fleet.store import Ask, Pace, Settle
from logwatch.secret import Secret
from tests.fakeapi import FakeAPI
from tests.fleet import test_fleet_e2e as scene
from tests.fleet.redisserver import RedisServer
from tests.helpers import wait_for


def run_scene(root: Path, hosts: int, alerts: int) -> None:
    """Part 1: the real daemons."""
    scene.HOSTS = hosts
    with ExitStack() as stack:
        redis = RedisServer(root / "redis").start()
        stack.callback(redis.stop)
        fake = stack.enter_context(FakeAPI())
        fleet = scene.Fleet(root / "hosts", fake, redis, stack)
        start = time.monotonic()
        for n in range(alerts):
            fleet.append(range(hosts), f"APP ERROR {{host}}-{n:03d}")
        total = hosts * alerts
        wait_for(lambda: len(scene.titles(fake, "discord", "app error web-")) >= total,
                 600, interval=0.2)
        elapsed = time.monotonic() - start
        bodies = fake.bodies("discord")
        print(f"scene: {hosts} hosts x {alerts} alerts = {total} alerts in {len(bodies)} "
              f"Discord messages, {fake.rate_limited} HTTP 429, all delivered after "
              f"{elapsed:.1f}s (the floor at 5 messages / 2 s is "
              f"{(total / 10 - 5) * 0.4:.1f}s)")


def _host(args: tuple[str, int, int, float]) -> list[float]:
    """One host's sends (in its own process, as on a real fleet): seconds each."""
    url, i, rounds, interval = args
    host = f"web-{i:02d}"
    link = FleetLink(FleetSettings(Secret(url), namespace="bench"), host)
    store = RedisStore(link)
    # a window so wide the bench never waits for a slot: only round trips count
    pace = Pace("bench-hook", (Window(10**9, 1.0),))
    out = []
    for n in range(rounds):
        name = claim_name("bench-hook", "rule", f"{i}-{n}")
        t0 = time.perf_counter()
        begun = store.begin(host, pace, [Ask("alert", name, 1)], LEASE)
        store.end(host, pace, begun.slot, 0.0, [Settle(name, True, 60.0)])
        out.append(time.perf_counter() - t0)
        time.sleep(interval)  # hosts send now and then, not in a tight loop
    link.close()
    return out


def run_latency(root: Path, hosts: int, rounds: int, interval: float) -> None:
    """Part 2: the round trips of one send, from ``hosts`` processes at once."""
    redis = RedisServer(root / "redis-latency").start()
    try:
        with multiprocessing.get_context("fork").Pool(hosts) as pool:
            results = pool.map(_host, [(redis.url, i, rounds, interval)
                                      for i in range(hosts)])
        samples = sorted(s for r in results for s in r)
        p99 = samples[int(len(samples) * 0.99) - 1]
        load = os.getloadavg()[0]
        p50 = statistics.median(samples)
        print(f"coordination per alert ({hosts} hosts at once, {len(samples)} sends, 2 round "
              f"trips each, one every {interval * 1000:g} ms per host): p50 {p50 * 1000:.2f} ms, "
              f"p99 {p99 * 1000:.2f} ms (target: p99 < 20 ms); load average {load:.1f}")
    finally:
        redis.stop()


def main() -> None:
    """Parse the options and run both parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--alerts", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--only", choices=("latency", "scene"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="logwatch-bench-fleet-") as tmp:
        if args.only != "scene":
            run_latency(Path(tmp), args.hosts, args.rounds, args.interval)
        if args.only != "latency":
            run_scene(Path(tmp), args.hosts, args.alerts)


if __name__ == "__main__":
    main()
