"""``logwatch test --alerts``: replaying files at their own times through the policy."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pytest

from logwatch.commands.simulate import SimulationResult, simulate
from logwatch.config import Config, load_config
from logwatch.errors import LogwatchError
from tests.helpers import CORPUS, REPO, logwatch, write

OPENSSH = CORPUS / "loghub" / "OpenSSH_2k.log"
#: when the replays happen: decides the year of "Dec 10" (2025, the last December)
NOW = datetime(2026, 11, 28, 3, 0, 0).timestamp()

CONFIG = """\
[logwatch]
hostname = "LabSZ"
state_dir = "{state}"
storm = {{ rate = {rate}, per = "{per}", digest_every = "5m", top = 5 }}

[destinations.oncall]
type = "console"

[[rules]]
id = "ssh-bruteforce"
match = 'sshd\\[\\d+\\]: Failed password for (?:invalid user )?(?P<user>\\S*) from (?P<ip>\\S+)'
title = "SSH brute force from {{ip}}"
message = "{{count}} failed passwords for {{user}} from {{ip}} on {{host}} within {{within}}"
threshold = {{ count = 5, within = "10m", by = "{{ip}}" }}
dedup = {{ by = "{{ip}}", for = "1h" }}

[[rules]]
id = "ssh-accepted"
match = 'Accepted password for (?P<user>\\S+) from (?P<ip>\\S+)'
title = "SSH login: {{user}} from {{ip}}"
"""


def make_config(tmp_path: Path, *, rate: int = 20, per: str = "1m") -> Config:
    text = CONFIG.format(state=tmp_path / "state", rate=rate, per=per)
    path = write(tmp_path / "logwatch.toml", text)
    return load_config(path)


def run(config: Config, *paths: Path, rule: str | None = None) -> tuple[SimulationResult, str]:
    out = io.StringIO()
    result = simulate(config, list(paths), out, rule=rule, now=NOW)
    return result, out.getvalue()


def assert_balanced(result: SimulationResult) -> None:
    """Every hit is in an alert, a summary, a digest, or below the threshold."""
    for name, account in result.accounts.items():
        assert account.hits == (account.alerted + account.summarized + account.digested
                                + account.below_threshold), name
    assert result.balanced


@pytest.mark.corpus
def test_openssh_brute_force_gives_a_short_list(tmp_path: Path) -> None:
    """loghub's real brute force: 517 failed passwords: 10 alerts and 9 summaries."""
    result, text = run(make_config(tmp_path), OPENSSH)
    assert result.lines == 2000
    assert result.hits["ssh-bruteforce"] == 517
    assert result.kinds() == {"alert": 11, "summary": 9}
    assert [a.rule for a in result.alerts].count("ssh-bruteforce") == 19
    assert_balanced(result)
    oncall = result.accounts["oncall"]
    assert (oncall.alerted, oncall.summarized, oncall.below_threshold) == (51, 440, 27)
    lines = text.splitlines()
    assert lines[0].startswith("Dec 10 07:28:03  alert     SSH brute force from 112.95.230.3")
    assert "281 more 'SSH brute force from 183.62.140.253' suppressed between 10:54 and 11:04" \
        in text
    assert lines[-1] == ("oncall: 518 hits = 51 in alerts + 440 in summaries + 0 in digests + "
                         "27 below threshold (all accounted for)")
    assert len(lines) < 40
    assert result.untimed == 0


@pytest.mark.corpus
def test_storm_digests_in_a_replay(tmp_path: Path) -> None:
    """More than 2 alerts an hour is a storm here: digests, and every hit accounted for."""
    result, text = run(make_config(tmp_path, rate=2, per="1h"), OPENSSH)
    kinds = result.kinds()
    assert kinds["digest"] >= 1
    assert kinds["system"] >= 2  # storm in progress, then over (alone or in a digest)
    assert "storm" in text
    assert_balanced(result)


def test_lines_without_time_take_the_previous_lines(tmp_path: Path) -> None:
    """A continuation line has no timestamp: it happens when the line before it did."""
    log = write(tmp_path / "auth.log", (
        "Nov 20 10:00:00 h sshd[1]: Accepted password for ann from 10.1.1.1 port 1 ssh2\n"
        "Nov 20 10:05:00 h kernel: something else\n"
        "    Accepted password for bob from 10.1.1.2 port 2 ssh2\n"
    ))
    result, text = run(make_config(tmp_path), log)
    assert result.untimed == 1
    assert [a.time for a in result.alerts] == [
        datetime(2026, 11, 20, 10, 0).timestamp(), datetime(2026, 11, 20, 10, 5).timestamp()]
    assert "1 hits had no timestamp of their own" in text


@pytest.mark.corpus
def test_rule_selection(tmp_path: Path) -> None:
    """``--rule`` replays one rule only; an unknown one is a clear error."""
    result, _ = run(make_config(tmp_path), OPENSSH, rule="ssh-accepted")
    assert set(result.hits) <= {"ssh-accepted"}
    assert {a.rule for a in result.alerts} <= {"ssh-accepted"}
    with pytest.raises(LogwatchError, match='no rule "nope"'):
        run(make_config(tmp_path), OPENSSH, rule="nope")


def test_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    """A missing file or a directory: ``LogwatchError`` naming it."""
    with pytest.raises(LogwatchError, match=r"missing\.log: cannot read"):
        run(make_config(tmp_path), tmp_path / "missing.log")
    with pytest.raises(LogwatchError, match="is a directory"):
        run(make_config(tmp_path), tmp_path)


@pytest.mark.corpus
def test_the_shipped_rules_on_the_openssh_sample() -> None:
    """``rules.example.toml`` (several destinations): a short list, every hit accounted for."""
    example = REPO / "rules.example.toml"
    if not example.exists():
        pytest.skip("rules.example.toml is not written yet")
    result, text = run(load_config(example, environ={}), OPENSSH)
    assert_balanced(result)
    assert sum(result.hits.values()) > 500
    assert len(result.alerts) < 50
    assert "SSH brute force" in text


@pytest.mark.corpus
def test_cli(tmp_path: Path) -> None:
    """``logwatch test --alerts`` for real: the list and the accounting, exit 0."""
    config = write(tmp_path / "logwatch.toml", CONFIG.format(state=tmp_path / "s", rate=20,
                                                                per="1m"))
    proc = logwatch("test", "-c", str(config), "--alerts", str(OPENSSH))
    assert proc.returncode == 0, proc.stderr
    assert "suppressed between" in proc.stdout
    assert "(all accounted for)" in proc.stdout


def test_hits_before_any_timed_line_are_not_said_to_take_the_previous_time(
        tmp_path: Path) -> None:
    """No line before them had a time: the message says so, not "the previous line's"."""
    log = write(tmp_path / "auth.log",
                "    Accepted password for bob from 10.1.1.2 port 2 ssh2\n")
    result, text = run(make_config(tmp_path), log)
    assert (result.untimed, result.untimed_first) == (1, 1)
    assert "previous line's time" not in text
    assert "1 hits had no timestamp and no line before them had one" in text


def test_nginx_dates_are_the_lines_own(tmp_path: Path) -> None:
    """An nginx error log replays at its own times, not at the current time."""
    log = write(tmp_path / "error.log", (
        "2015/10/29 20:01:02 [error] 7#7: Accepted password for ann from 10.1.1.1 port 1\n"
        "2015/10/29 20:31:02 [error] 7#7: Accepted password for bob from 10.1.1.2 port 2\n"))
    result, _ = run(make_config(tmp_path), log)
    assert result.untimed == 0
    assert [a.time for a in result.alerts] == [
        datetime(2015, 10, 29, 20, 1, 2).timestamp(), datetime(2015, 10, 29, 20, 31, 2).timestamp()]
