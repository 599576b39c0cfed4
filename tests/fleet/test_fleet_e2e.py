"""Twenty real ``logwatch run`` processes, one Redis, one fake Discord and Telegram.

Each host has its own hostname, state_dir and log file; all post to the same webhook
and group (the fake server with the real limits: 5 requests / 2 s per webhook, 1
message/s and 20/min per group). One test walks through the issue's scenes in
order, so the twenty daemons start once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from logwatch.state import DB_NAME
from tests.fakeapi import BOT_TOKEN, CHAT_ID, FakeAPI
from tests.fleet.redisserver import RedisServer
from tests.helpers import Daemon, wait_for, write

HOSTS = 20
CONFIG = """\
[logwatch]
hostname = "{host}"
state_dir = "{state}"
start_at = "beginning"
poll_interval = "0.2s"
drain_timeout = "2s"
storm = {{ rate = 1000, per = "1m" }}

[fleet]
url = "{redis}"
namespace = "e2e"
# 20 daemons on 2 busy cores: a Redis answer can wait 200 ms (the default) for a CPU, and a
# host that takes that for "Redis is down" paces alone for a second (a 429 is then possible)
timeout = "1s"

[destinations.hook]
type = "discord"
url = "${{HOOK_URL}}"

[destinations.ops]
type = "telegram"
token = "${{TG_TOKEN}}"
chat_id = {chat}
api_url = "{api}"

[sources.app]
files = ["{log}"]

[[rules]]
id = "ssh"
match = 'Failed password for (?P<user>\\S*) from (?P<ip>\\S+)'
title = "SSH failure from {{ip}}"
message = "{{user}} from {{ip}} on {{host}}"
dedup = {{ by = "{{ip}}", for = "4s" }}

[[rules]]
id = "spread"
match = 'Invalid user (?P<user>\\S*) from (?P<ip>\\S+)'
title = "Attack spread over the fleet from {{ip}}"
threshold = {{ count = 5, within = "10m", by = "{{ip}}" }}
fleet = {{ hosts = 10, within = "10m", by = "{{ip}}" }}

[[rules]]
id = "app"
match = 'APP ERROR (?P<n>\\S+)'
title = "app error {{n}}"
to = ["hook"]
"""


class Fleet:
    """The twenty hosts: their log files and daemons."""

    def __init__(self, root: Path, fake: FakeAPI, redis: RedisServer, stack: ExitStack) -> None:
        self.root = root
        self.logs: list[Path] = []
        self.states: list[Path] = []
        self.daemons: list[Daemon] = []
        env = {"HOOK_URL": fake.discord_url(), "TG_TOKEN": BOT_TOKEN}
        for i in range(HOSTS):
            host = f"web-{i + 1:02d}"
            log = write(root / host / "app.log", "")
            state = root / host / "state"
            config = write(root / host / "logwatch.toml", CONFIG.format(
                host=host, state=state, redis=redis.url, chat=CHAT_ID, api=fake.base, log=log))
            self.logs.append(log)
            self.states.append(state)
            self.daemons.append(stack.enter_context(Daemon(config, env=env)))
        for daemon in self.daemons:
            daemon.wait_stderr("coordinates with the fleet", timeout=60)

    def append(self, hosts: range | list[int], line: str) -> None:
        """Append ``line`` (with ``{host}`` filled in) to each of ``hosts``' logs."""
        for i in hosts:
            with self.logs[i].open("a") as f:
                f.write(line.format(host=f"web-{i + 1:02d}") + "\n")

    def links(self) -> list[dict[str, Any] | None]:
        """Each host's fleet link as ``logwatch status`` reads it."""
        out = []
        for state in self.states:
            conn = sqlite3.connect(f"file:{state / DB_NAME}?mode=ro", uri=True)
            try:
                row = conn.execute("SELECT value FROM kv WHERE ns = 'fleet' AND key = 'link'"
                                   ).fetchone()
            except sqlite3.Error:
                row = None
            finally:
                conn.close()
            out.append(json.loads(row[0]) if row else None)
        return out


def titles(fake: FakeAPI, service: str, needle: str) -> list[str]:
    """Titles (Discord embeds) or first lines (Telegram) containing ``needle``."""
    if service == "discord":
        # markdown escapes undone: "web\\-01" is "web-01"
        found = [e.get("title", "").replace("\\", "") for b in fake.bodies("discord")
                 for e in b["embeds"]]
    else:
        found = [part.split("\n", 1)[0] for b in fake.bodies("telegram")
                 for part in b["text"].split("\n\n")]
    return [t for t in found if needle in t]


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Fleet, FakeAPI, RedisServer]]:
    """Redis, the fake services (real limits) and twenty running hosts."""
    with ExitStack() as stack:
        redis = RedisServer(tmp_path / "redis").start()
        stack.callback(redis.stop)
        fake = stack.enter_context(FakeAPI())
        yield Fleet(tmp_path / "hosts", fake, redis, stack), fake, redis


@pytest.mark.slow
def test_twenty_hosts_are_one_team(fleet: tuple[Fleet, FakeAPI, RedisServer]) -> None:
    """Dedup, fleet threshold, shared pacing, and Redis dying and coming back."""
    hosts, fake, redis = fleet
    everyone = range(HOSTS)

    # 1. the same attacker line on all 20 hosts -> 1 alert and 1 summary counting the hosts
    hosts.append(everyone, "sshd[1]: Failed password for root from 203.0.113.7 port 22")
    for service in ("discord", "telegram"):
        wait_for(lambda s=service: titles(fake, s, "on 20 hosts"), 30,
                 message=f"the fleet summary on {service}")
        seen = titles(fake, service, "203.0.113.7")
        assert len(seen) == 2 and sum("on 20 hosts" in t for t in seen) == 1, seen
    summary = next(e for b in fake.bodies("discord") for e in b["embeds"]
                   if "on 20 hosts" in e["title"])
    assert summary["title"] == "19 more 'SSH failure from 203.0.113.7' on 20 hosts"
    assert "also seen on 19 hosts (web-" in summary["description"].replace("\\", "")

    # 2. 3 failures from one address on each of 12 hosts, fleet hosts = 10 -> 1 alert
    for _ in range(3):
        hosts.append(range(12), "sshd[2]: Invalid user admin from 198.51.100.9 port 22")
    for service in ("discord", "telegram"):
        wait_for(lambda s=service: titles(fake, s, "from 198.51.100.9"), 30,
                 message=f"the fleet threshold alert on {service}")
    # every host has read its lines (each checkpoint is past them) before counting
    wait_for(lambda: fake.requests and all(
        "198.51.100.9" in log.read_text() for log in hosts.logs[:12]), 10)
    assert len(titles(fake, "discord", "from 198.51.100.9")) == 1
    assert len(titles(fake, "telegram", "from 198.51.100.9")) == 1

    # 3. 20 hosts x 30 distinct alerts within 10 s -> all delivered, at most 2 HTTP 429s
    limited_before = fake.rate_limited
    for n in range(30):
        hosts.append(everyone, f"APP ERROR {{host}}-{n:02d}")
    wait_for(lambda: len(titles(fake, "discord", "app error web-")) >= HOSTS * 30, 120,
             interval=0.5, message="600 distinct alerts on Discord")
    assert len(set(titles(fake, "discord", "app error web-"))) == HOSTS * 30
    assert fake.rate_limited - limited_before <= 2

    # 4. Redis killed: every alert still delivered (duplicates allowed, counted) ...
    redis.kill()
    hosts.append(everyone, "APP ERROR down-{host}")
    hosts.append(everyone, "sshd[3]: Failed password for root from 192.0.2.44 port 22")
    wait_for(lambda: len(titles(fake, "discord", "app error down-")) >= HOSTS, 120,
             interval=0.5, message="the alerts sent while Redis is down")
    wait_for(lambda: titles(fake, "discord", "SSH failure from 192.0.2.44"), 60)
    assert len(set(titles(fake, "discord", "app error down-"))) == HOSTS
    wait_for(lambda: all(link and link["failed_open"] for link in hosts.links()), 30,
             message="every host counting what it did alone")
    # ... and restarted: coordination resumes without restarting logwatch
    redis.start()
    wait_for(lambda: all(link and link["connected"] for link in hosts.links()), 60,
             interval=0.5, message="every host reconnected")
    hosts.append(everyone, "sshd[4]: Failed password for root from 192.0.2.99 port 22")
    wait_for(lambda: titles(fake, "discord", "on 20 hosts") and len(
        titles(fake, "discord", "192.0.2.99")) >= 2, 60, message="the summary after restart")
    assert len(titles(fake, "discord", "192.0.2.99")) == 2
    assert not fake.violations
    for daemon in hosts.daemons:
        assert daemon.stop() == 0
        assert "Traceback" not in daemon.stderr
