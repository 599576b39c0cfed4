"""The command line: verbs, exit codes, one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.helpers import CORPUS, logwatch, write

SSH_RULES = r"""
[[rules]]
id = "ssh-fail"
match = 'sshd\[\d+\]: Failed password for (?:invalid user )?(?P<user>\S*) from (?P<ip>\S+)'
[[rules.tests]]
line = "Sep 14 02:08:35 gate sshd[14920]: Failed password for invalid user webmaster from 198.51.100.186 port 51733 ssh2"
fields = { user = "webmaster", ip = "198.51.100.186" }
[[rules.tests]]
line = "Sep 14 02:08:33 gate sshd[14920]: reverse mapping checking getaddrinfo for ns1.example.net [198.51.100.186] failed - POSSIBLE BREAK-IN ATTEMPT!"
match = false
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write(tmp_path / "c.toml", SSH_RULES)


def test_usage_errors_exit_2() -> None:
    """No verb, or an unknown one, is a usage error."""
    assert logwatch().returncode == 2
    assert logwatch("frobnicate").returncode == 2


def test_check_passes_and_says_what_it_checked(config: Path) -> None:
    """A good config: exit 0 and a summary line."""
    result = logwatch("check", "-c", str(config))
    assert result.returncode == 0, result.stderr
    assert "OK: 1 rule, 2 tests passed, 0 sources, 1 destination (console)" in result.stdout


def test_check_reports_a_failing_rule_test(tmp_path: Path) -> None:
    """A rule test whose fields differ fails `check` and says how."""
    path = write(tmp_path / "c.toml", SSH_RULES.replace('user = "webmaster"', 'user = "admin"'))
    result = logwatch("check", "-c", str(path))
    assert result.returncode == 1
    assert "user: expected 'admin', got 'webmaster'" in result.stderr


@pytest.mark.corpus
def test_replay_counts_hits_like_fail2ban_regex(config: Path) -> None:
    """`logwatch test` counts hits per rule on a real log and shows samples."""
    log = CORPUS / "loghub" / "OpenSSH_2k.log"
    pattern = re.compile(r"sshd\[\d+\]: Failed password for (?:invalid user )?\S* from \S+")
    expected = sum(bool(pattern.search(line)) for line in log.read_text().splitlines())
    assert expected > 400
    result = logwatch("test", "-c", str(config), str(log))
    assert result.returncode == 0, result.stderr
    assert f"ssh-fail  {expected:>8,} hits" in result.stdout
    assert "Lines: 2,000" in result.stdout
    assert "lines/s" in result.stdout


def test_replay_json_has_one_object_per_hit(config: Path, tmp_path: Path) -> None:
    """`--json` prints rule, file, line number and fields for every hit."""
    log = write(tmp_path / "auth.log", "noise\n" + SSH_RULES.split('line = "')[1].split('"', maxsplit=1)[0]
                + "\nmore noise\n")
    result = logwatch("test", "-c", str(config), str(log), "--json")
    assert result.returncode == 0, result.stderr
    (hit,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert hit == {"rule": "ssh-fail", "file": str(log), "line_no": 2,
                   "fields": {"user": "webmaster", "ip": "198.51.100.186"}}


def test_replay_survives_binary_and_invalid_utf8(config: Path, tmp_path: Path) -> None:
    """NUL bytes, invalid UTF-8 and a missing final newline neither crash nor hide a hit."""
    line = SSH_RULES.split('line = "')[1].split('"', maxsplit=1)[0].encode()
    log = tmp_path / "bin.log"
    log.write_bytes(b"\x00\x01\xff\xfe garbage\n" + b"\xc3\x28" * 100 + b"\n" + line)
    result = logwatch("test", "-c", str(config), str(log), "--json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(x)["line_no"] for x in result.stdout.splitlines()] == [3]


def test_replay_of_an_unreadable_path_is_one_line_and_exit_1(config: Path, tmp_path: Path) -> None:
    """A missing file or a directory: one clear line each, exit 1, the other files still read."""
    good = write(tmp_path / "ok.log", "x\n")
    result = logwatch("test", "-c", str(config), str(tmp_path / "missing.log"), str(tmp_path),
                      str(good))
    assert result.returncode == 1
    errors = result.stderr.strip().splitlines()
    assert errors == [f"logwatch: {tmp_path / 'missing.log'}: no such file",
                      f"logwatch: on a system that logs to the journal only, try: journalctl "
                      f"-o short | logwatch test -c {config} -",
                      f"logwatch: {tmp_path}: is a directory, not a log file"]
    assert "Lines: 1," in result.stdout


def test_unknown_rule_is_an_input_error(config: Path) -> None:
    """`--rule` with an id that does not exist names the known ones."""
    result = logwatch("test", "-c", str(config), "--rule", "nope", "/dev/null")
    assert result.returncode == 1
    assert 'no rule "nope"' in result.stderr and "ssh-fail" in result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    """A config path that does not exist is one line, exit 1."""
    result = logwatch("check", "-c", str(tmp_path / "nope.toml"))
    assert result.returncode == 1
    path = tmp_path / "nope.toml"
    assert result.stderr.strip() == (f"{path}: no such config file (write one with "
                                     f"`logwatch init -c {path}`, or give -c PATH)")


def test_telegram_chats_runs_without_chat_id(tmp_path: Path) -> None:
    """telegram-chats finds the chat_id, so it must not demand one (check still does)."""
    from tests.fakeapi import BOT_TOKEN, FakeAPI

    with FakeAPI() as fake:
        config = write(tmp_path / "c.toml", '[destinations.ops]\ntype = "telegram"\n'
                       f'token = "${{BOT_TOKEN}}"\napi_url = "{fake.base}"\n')
        fake.updates = [{"update_id": 1, "message": {"chat": {
            "id": -100123, "type": "supergroup", "title": "On call"}}}]
        env = {"BOT_TOKEN": BOT_TOKEN}
        chats = logwatch("telegram-chats", "-c", str(config), "ops", env=env)
        assert chats.returncode == 0, chats.stderr
        assert "-100123  supergroup  On call" in chats.stdout
        check = logwatch("check", "-c", str(config), env=env)
        assert check.returncode == 1
        assert "chat_id: missing (find it with `logwatch telegram-chats ops`)" in check.stderr
