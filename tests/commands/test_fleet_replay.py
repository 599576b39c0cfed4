"""``logwatch test --alerts --host NAME=FILE``: several hosts' logs replayed as one fleet."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pytest

from logwatch.commands.fleet_replay import FleetResult, simulate_fleet
from logwatch.config import load_config
from tests.helpers import logwatch, write

NOW = datetime(2026, 3, 1, 12, 0, 0).timestamp()
CONFIG = """\
[logwatch]
state_dir = "{state}"

[fleet]
url = "redis://127.0.0.1:1/0"   # never contacted by a replay

[destinations.hook]
type = "discord"
url = "https://discord.example/api/webhooks/1/abc"

[destinations.term]
type = "console"

[[rules]]
id = "ssh"
match = 'Failed password for (?P<user>\\S*) from (?P<ip>\\S+)'
title = "SSH failure from {{ip}}"
to = ["hook"]
dedup = {{ by = "{{ip}}", for = "10m" }}

[[rules]]
id = "spread"
match = 'Invalid user (?P<user>\\S*) from (?P<ip>\\S+)'
title = "Attack spread from {{ip}}"
to = ["hook", "term"]
fleet = {{ hosts = {need}, within = "10m", by = "{{ip}}" }}
"""


def fleet_logs(tmp_path: Path, hosts: int) -> list[tuple[str, Path]]:
    """Each host: the same attacker 3 times (one a minute), and one spread attempt a minute."""
    out = []
    for h in range(1, hosts + 1):
        lines = []
        for m in range(3):
            lines.append(f"Feb 25 14:3{m}:0{h} web sshd[1]: Failed password for root from "
                         "203.0.113.7 port 22")
            lines.append(f"Feb 25 14:3{m}:1{h} web sshd[1]: Invalid user admin from "
                         "198.51.100.9 port 22")
        out.append((f"web-{h}", write(tmp_path / f"web-{h}.log", "\n".join(lines) + "\n")))
    return out


def replay(tmp_path: Path, hosts: int, need: int = 3) -> tuple[FleetResult, str]:
    """Replay ``hosts`` hosts' logs with a fleet threshold of ``need`` hosts."""
    config = load_config(write(tmp_path / "logwatch.toml", CONFIG.format(
        state=tmp_path / "state", need=need), mode=0o600))
    out = io.StringIO()
    result = simulate_fleet(config, fleet_logs(tmp_path, hosts), out, now=NOW)
    return result, out.getvalue()


def test_the_same_attacker_on_four_hosts_is_one_alert_and_one_fleet_summary(
        tmp_path: Path) -> None:
    """The first host sends; the others' alerts are counted into its summary."""
    result, text = replay(tmp_path, 4)
    ssh = [a for a in result.total.alerts if a.rule == "ssh"]
    alerts = [a for a in ssh if a.kind == "alert"]
    assert [(a.host, a.to) for a in alerts] == [("web-1", ("hook",))]
    owner = next(a for a in ssh if a.kind == "summary" and a.host == "web-1")
    assert owner.title == "5 more 'SSH failure from 203.0.113.7' on 4 hosts"
    assert "also seen on 3 hosts (web-2, web-3, web-4): 3 hits" in owner.message
    assert result.covered == 3
    assert "[web-1] Feb 25 14:30:01  alert     SSH failure from 203.0.113.7" in text


def test_a_fleet_threshold_fires_once_on_the_host_that_completes_it(tmp_path: Path) -> None:
    """Three hosts needed: the third host's first attempt fires, to every destination, once."""
    result, text = replay(tmp_path, 4)
    fired = [a for a in result.total.alerts if a.rule == "spread"]
    assert [(a.host, a.to) for a in fired] == [("web-3", ("hook", "term"))]
    assert "Seen on 3 hosts within 10m: web-3, web-2, web-1" in fired[0].message
    assert result.fleet_fired == 1
    assert "fleet of 4 hosts: 3 alerts or summaries covered" in text


def test_below_the_fleet_threshold_nothing_fires_and_every_hit_is_accounted(
        tmp_path: Path) -> None:
    """Two hosts of the three needed: no alert; the fleet's accounts still balance."""
    result, text = replay(tmp_path, 2)
    assert not [a for a in result.total.alerts if a.rule == "spread"]
    assert result.total.balanced and result.total.accounts["hook"].hits == 12
    assert result.total.accounts["hook"].below_threshold == 6
    assert "hook: 12 hits = 1 in alerts + 5 in summaries + 0 in digests + 6 below threshold " \
           "(all accounted for)" in text


def test_a_hosts_files_replay_in_order_and_accounts_balance(tmp_path: Path) -> None:
    """One host named twice (a rotated file, then the current one): one stream, one host."""
    config = load_config(write(tmp_path / "logwatch.toml", CONFIG.format(
        state=tmp_path / "state", need=3), mode=0o600))
    hosts = fleet_logs(tmp_path, 3)
    lines = hosts[0][1].read_text().splitlines(keepends=True)
    rotated = write(tmp_path / "web-1.log.1", "".join(lines[:2]))
    current = write(tmp_path / "web-1.log", "".join(lines[2:]))
    result = simulate_fleet(config, [("web-1", rotated), *hosts[1:], ("web-1", current)],
                            io.StringIO(), now=NOW)
    assert set(result.hosts) == {"web-1", "web-2", "web-3"}
    assert result.hosts["web-1"].hits["ssh"] == 3 and result.total.balanced
    first = next(a for a in result.total.alerts if a.rule == "ssh" and a.kind == "alert")
    assert first.host == "web-1"  # its rotated file's first line is the fleet's first


@pytest.mark.parametrize(("args", "error"), [
    (["--host", "web-1=a.log"], "--host NAME=FILE goes with --alerts"),
    (["--alerts", "--host", "web-1=a.log", "b.log"], "--host NAME=FILE goes with --alerts"),
    (["--alerts", "--host", "a.log"], "expected NAME=FILE, got 'a.log'"),
    (["--alerts"], "give a LOGFILE"),
])
def test_misuse_is_a_usage_error(tmp_path: Path, args: list[str], error: str) -> None:
    """Exit 2 with one line, no traceback."""
    config = write(tmp_path / "logwatch.toml", CONFIG.format(state=tmp_path / "s", need=3),
                   mode=0o600)
    proc = logwatch("test", "-c", str(config), *args)
    assert proc.returncode == 2 and error in proc.stderr and "Traceback" not in proc.stderr


def test_the_command_line_replays_a_fleet(tmp_path: Path) -> None:
    """Through ``logwatch test``; an unreadable file is one line and exit 1."""
    config = write(tmp_path / "logwatch.toml", CONFIG.format(state=tmp_path / "s", need=3),
                   mode=0o600)
    hosts = [a for name, path in fleet_logs(tmp_path, 3) for a in ("--host", f"{name}={path}")]
    proc = logwatch("test", "-c", str(config), "--alerts", *hosts)
    assert proc.returncode == 0, proc.stderr
    assert "fleet of 3 hosts" in proc.stdout and "(all accounted for)" in proc.stdout
    missing = logwatch("test", "-c", str(config), "--alerts", "--host", f"x={tmp_path}/nope")
    assert missing.returncode == 1 and "nope: cannot read" in missing.stderr
    assert "Traceback" not in missing.stderr
