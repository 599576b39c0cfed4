"""The policy's fleet side with Redis really killed: "fleet unavailable" said once per outage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from logwatch.config import Config, load_config
from logwatch.fleet.link import FleetLink
from logwatch.fleet.policy import FleetPolicy
from logwatch.fleet.redisstore import RedisStore
from logwatch.models import Alert, Hit, LogLine, line_alert_id
from logwatch.policy import Policy
from tests.fleet.redisserver import RedisServer
from tests.helpers import wait_for, write

T0 = 1_700_000_000.0
CONFIG = """\
[logwatch]
hostname = "{host}"
state_dir = "{state}"

[fleet]
url = "redis://127.0.0.1:1/0"

[destinations.term]
type = "console"

[sources.auth]
files = ["{log}"]

[[rules]]
id = "spread"
source = "auth"
match = 'Invalid user (?P<user>\\S*) from (?P<ip>\\S+)'
title = "Attack spread over the fleet from {{ip}}"
fleet = {{ hosts = 3, within = "10m", by = "{{ip}}" }}
"""


def config(tmp_path: Path, host: str = "web-1") -> Config:
    """One rule with a fleet threshold (the [fleet] URL is not used: the link is the test's)."""
    return load_config(write(tmp_path / f"{host}.toml", CONFIG.format(
        host=host, state=tmp_path / host, log=tmp_path / "auth.log")))


class Host:
    """One host's policy on the test's Redis, fed one hit a second (no repeats skipped)."""

    def __init__(self, cfg: Config, link: FleetLink) -> None:
        self.policy = Policy(cfg, fleet=FleetPolicy(RedisStore(link), cfg))
        self.n = 0

    def hit(self, ip: str = "198.51.100.9") -> list[Alert]:
        self.n += 1
        line = LogLine(f"sshd[1]: Invalid user admin from {ip}", "auth", "auth.log",
                       f"auth.log@{self.n}", T0 + self.n * 60)
        return self.policy.feed(Hit("spread", {"user": "admin", "ip": ip}, line))


def system_alerts(alerts: list[Alert]) -> list[Alert]:
    """The "fleet unavailable" alerts among ``alerts``."""
    return [a for a in alerts if a.kind == "system" and "fleet unavailable" in a.title]


def test_fleet_unavailable_is_said_once_per_outage(
        tmp_path: Path, redis_server: RedisServer, make_link: Callable[..., FleetLink]) -> None:
    """Kill Redis: one system alert, however many hits; back and killed again: one more."""
    link = make_link("web-1", cooldown=0.05, max_cooldown=0.1)
    host = Host(config(tmp_path), link)
    assert host.hit() == []  # connected: counted in Redis, below the fleet's 3 hosts

    redis_server.kill()
    first = [host.hit() for _ in range(5)]
    announced = system_alerts(first[0])
    assert len(announced) == 1 and not any(system_alerts(a) for a in first[1:])
    alert = announced[0]
    assert alert.host == "web-1" and alert.to == ("term",)
    assert "fleet thresholds are off on this host" in alert.message
    assert "127.0.0.1" in alert.message and "redis://" in alert.message
    assert host.policy.fleet is not None and host.policy.fleet.fail_open == 5
    # the breaker's probes keep failing while it is down: still nothing more
    wait_for(lambda: host.hit() == [] and link.failures >= 3, 10,
             message="the breaker to probe the dead Redis again")

    redis_server.start()
    wait_for(lambda: host.hit() == [] and link.up, 10, message="the link to come back")
    redis_server.kill()
    again = system_alerts(host.hit())
    assert len(again) == 1 and again[0].id != alert.id


def test_fleet_alert_ids_are_the_lines_and_sort_as_they_come(
        tmp_path: Path, make_link: Callable[..., FleetLink]) -> None:
    """A fleet threshold's alert has the id of its line (a replay is ignored by the outbox),
    ordered like the host's other line alerts (side by side in the outbox's index)."""
    hosts = [Host(config(tmp_path, f"web-{n}"), make_link(f"web-{n}")) for n in (1, 2, 3)]
    fired: list[Alert] = []
    for ip in ("198.51.100.9", "198.51.100.10"):
        for host in hosts:
            host.n += 20  # the lines further on in each host's file
            fired += host.hit(ip)
    assert [a.id for a in fired] == [line_alert_id("fleet", "spread", key)
                                     for key in ("auth.log@21", "auth.log@42")]
    assert fired[0].id < fired[1].id
