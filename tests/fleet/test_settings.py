"""The ``[fleet]`` table and a rule's ``fleet`` option; without them, no ``redis`` import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from logwatch.config import load_config
from logwatch.errors import ConfigError
from tests.helpers import REPO, write

BASE = """\
[logwatch]
hostname = "web-1"
state_dir = "state"

[sources.auth]
files = ["auth.log"]

[[rules]]
id = "ssh"
match = 'Failed password for (?P<user>\\S*) from (?P<ip>\\S+)'
"""
FLEET_RULE = 'fleet = { hosts = 10, within = "10m", by = "{ip}" }\n'


def load(tmp_path: Path, text: str) -> object:
    """Load ``text`` as the config."""
    return load_config(write(tmp_path / "logwatch.toml", text))


def problems(tmp_path: Path, text: str) -> str:
    """The config errors of ``text``, one per line."""
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return str(info.value)


def test_a_full_fleet_table_is_read(tmp_path: Path) -> None:
    """url, password_file (0600), namespace, timeout; the rule option."""
    write(tmp_path / "redis.pass", "pw-123456\n", mode=0o600)
    config = load_config(write(tmp_path / "logwatch.toml", BASE + FLEET_RULE + """
[fleet]
url = "rediss://redis.internal:6380/2"
password_file = "redis.pass"
namespace = "prod"
timeout = "150ms"
"""))
    fleet = config.fleet
    assert fleet is not None
    assert fleet.where == "rediss://redis.internal:6380/2"
    assert fleet.password is not None and fleet.password.reveal() == "pw-123456"
    assert (fleet.namespace, fleet.timeout) == ("prod", 0.15)
    rule = config.rules[0].fleet
    assert rule is not None and (rule.hosts, rule.within, rule.by.text) == (10, 600.0, "{ip}")
    assert "pw-123456" not in repr(config)


def test_defaults_and_unix_sockets(tmp_path: Path) -> None:
    """Namespace "logwatch", 200 ms; unix:// is a URL too."""
    config = load_config(write(tmp_path / "logwatch.toml",
                               BASE + '[fleet]\nurl = "unix:///run/redis/redis.sock"\n'))
    assert config.fleet is not None
    assert (config.fleet.namespace, config.fleet.timeout) == ("logwatch", 0.2)
    assert config.fleet.where == "unix:///run/redis/redis.sock"
    assert load(tmp_path, BASE).fleet is None  # type: ignore[attr-defined]


def test_a_password_in_the_url_is_never_shown(tmp_path: Path) -> None:
    """A URL with a password is a secret: errors and reprs mask it."""
    config = load_config(write(tmp_path / "logwatch.toml", BASE + """[fleet]
url = "${REDIS_URL}"
"""), environ={"REDIS_URL": "redis://:hunter2-pass@10.0.0.5:6379/0"})
    assert config.fleet is not None and config.fleet.where == "redis://10.0.0.5:6379/0"
    assert "hunter2" not in repr(config)
    text = problems(tmp_path, BASE + '[fleet]\nurl = "http://:hunter2@x/"\n')
    assert "hunter2" not in text and "redis://" in text


@pytest.mark.parametrize(("table", "expected"), [
    ('url = "http://127.0.0.1:6379"', "fleet: url: expected redis://, rediss:// or unix://"),
    ('url = "redis://127.0.0.1:6379"\nnamespace = "a b"', "fleet: namespace: use 1-64"),
    ('url = "redis://127.0.0.1:6379"\ntimeout = "0s"', "fleet: timeout: expected a duration"),
    ('url = "redis://127.0.0.1:6379"\nport = 1', "fleet: unknown key 'port'"),
    ('url = "redis://127.0.0.1:6379"\npassword_file = "nope"', "fleet: password_file: "),
    ("namespace = \"x\"", "fleet: url: missing"),
])
def test_bad_fleet_tables_get_one_line_each(tmp_path: Path, table: str, expected: str) -> None:
    """Every problem names the file, the line and the key."""
    text = problems(tmp_path, BASE + "[fleet]\n" + table + "\n")
    assert expected in text
    assert text.startswith("logwatch.toml:")


@pytest.mark.parametrize(("option", "expected"), [
    ('fleet = { hosts = 0, within = "1m" }', "fleet: hosts: expected a positive integer"),
    ('fleet = { hosts = 3 }', "fleet: within: missing"),
    ('fleet = { hosts = 3, within = "1m", by = "{nope}" }', "fleet: by: unknown field {nope}"),
    ('fleet = { hosts = 3, within = "1m", by = "{host}" }', "every host's key different"),
    ('fleet = 3', "fleet: expected { hosts = 10"),
])
def test_bad_rule_options(tmp_path: Path, option: str, expected: str) -> None:
    """The rule option is checked like threshold."""
    text = problems(tmp_path, BASE + option + '\n[fleet]\nurl = "redis://127.0.0.1"\n')
    assert expected in text


def test_a_fleet_rule_needs_the_fleet_table(tmp_path: Path) -> None:
    """Without [fleet], a rule's fleet option cannot work: said plainly."""
    assert 'rule "ssh": fleet: needs a [fleet] table' in problems(tmp_path, BASE + FLEET_RULE)


def test_importing_logwatch_does_not_import_redis() -> None:
    """The package, the config, the daemon and the CLI load without redis."""
    code = ("import sys, logwatch, logwatch.config, logwatch.daemon.service, logwatch.cli, "
            "logwatch.delivery.sender, logwatch.policy.policy, logwatch.fleet, logwatch.fleet.link; "
            "print(sorted(m for m in sys.modules if m == 'redis' or m.startswith('redis.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def test_a_run_without_fleet_does_not_import_redis(tmp_path: Path) -> None:
    """The daemon starting, reading and stopping without [fleet] never loads redis."""
    config = write(tmp_path / "logwatch.toml", BASE.replace('"auth.log"', f'"{tmp_path}/a.log"')
                   .replace('"state"', f'"{tmp_path}/state"'))
    write(tmp_path / "a.log", "Failed password for root from 192.0.2.1\n")
    code = ("import sys; from logwatch.config import load_config; "
            "from logwatch.daemon.service import Service; "
            f"s = Service(load_config({str(config)!r})); s.startup(); s.pump(); s.tick(); "
            "s.shutdown(); print(sorted(m for m in sys.modules if m.split('.')[0] == 'redis'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
