"""Hostile or careless configs: every bad value is one clear line, nothing hangs or recurses."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

import pytest

from logwatch.config import load_config
from logwatch.errors import ConfigError
from tests.helpers import Daemon, logwatch, write

BASE = """\
[logwatch]
{settings}

[sources.app]
files = ["{log}"]

[[rules]]
id = "boom"
match = "BOOM"
{rule}
"""


def config(tmp_path: Path, settings: str = "", rule: str = "") -> Path:
    """A small valid config with ``settings`` in [logwatch] and ``rule`` added to the rule."""
    if "state_dir" not in settings:
        settings = f'state_dir = "{tmp_path / "state"}"\n{settings}'
    return write(tmp_path / "logwatch.toml", BASE.format(
        log=tmp_path / "app.log", settings=settings, rule=rule))


def problems(path: Path, env: dict[str, str] | None = None) -> list[str]:
    """The problems load_config reports (fails if it accepts the config)."""
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=env or {})
    return list(caught.value.problems)


@pytest.mark.parametrize(("settings", "rule", "key"), [
    ("poll_interval = nan", "", "poll_interval"),
    ("poll_interval = inf", "", "poll_interval"),
    ("drain_timeout = nan", "", "drain_timeout"),
    ("failing_after = inf", "", "failing_after"),
    ("match_timeout = inf", "", "match_timeout"),
    ("storm = { per = nan }", "", "per"),
    ("storm = { digest_every = inf }", "", "digest_every"),
    ("", 'threshold = { count = 2, within = inf }', "within"),
    ("", 'dedup = { by = "x", for = nan }', "for"),
    ("", "quiet = -inf", "quiet"),
    ("", 'quiet = "9999999999999999999999999999999999999999d"', "quiet"),
])
def test_nan_and_inf_are_rejected_in_every_duration(tmp_path: Path, settings: str, rule: str,
                                                    key: str) -> None:
    """A non-finite (or absurdly long) duration is one line naming the key, never a crash later."""
    found = problems(config(tmp_path, settings, rule))
    assert len(found) == 1, found
    assert f"{key}:" in found[0] and "logwatch.toml:" in found[0]


def test_sighup_to_a_nan_config_keeps_the_running_daemon(tmp_path: Path) -> None:
    """The reload is refused with the one-line error; the old config keeps alerting."""
    path = config(tmp_path)
    log = write(tmp_path / "app.log", "")
    with Daemon(path) as daemon:
        daemon.wait_stderr("sends to console")
        config(tmp_path, "poll_interval = nan")
        daemon.send(signal.SIGHUP)
        daemon.wait_stderr("still running the old one")
        with log.open("a") as f:
            f.write("BOOM after the refused reload\n")
        daemon.wait_stdout("BOOM after the refused reload")
        assert daemon.stop() == 0
        assert "poll_interval: a duration must be a finite number" in daemon.stderr
        assert "Traceback" not in daemon.stderr


@pytest.mark.parametrize(("value", "shown"), [('"no"', "'no'"), ("0", "0"), ('"false"', "'false'")])
def test_enabled_must_be_a_boolean(tmp_path: Path, value: str, shown: str) -> None:
    """``enabled = "no"`` would have left the rule on: it is refused."""
    found = problems(config(tmp_path, rule=f"enabled = {value}"))
    assert found == [f'logwatch.toml:11: rules[0] "boom": enabled: expected true or false, '
                     f"got {shown}"]


def test_enabled_false_still_disables(tmp_path: Path) -> None:
    """The boolean keeps working."""
    assert load_config(config(tmp_path, rule="enabled = false"), environ={}).rules == ()


def test_a_missing_literal_include_is_an_error_a_glob_with_no_match_is_not(tmp_path: Path) -> None:
    """A named drop-in that does not exist is a typo to report; an empty rules.d/ is fine."""
    found = problems(config(tmp_path, 'include = ["rules.d/*.toml", "missing.toml"]'))
    assert found == [f"logwatch.toml:3: include: {tmp_path / 'missing.toml'}: no such file"]
    load_config(config(tmp_path, 'include = ["rules.d/*.toml"]'), environ={})


def test_env_vars_expand_in_state_dir_files_and_include(tmp_path: Path) -> None:
    """``${VAR}`` works where paths are given, as it does in secrets."""
    write(tmp_path / "inc" / "more.toml", '[[rules]]\nid = "more"\nmatch = "MORE"\n')
    path = write(tmp_path / "logwatch.toml", """\
[logwatch]
state_dir = "${TOP}/state"
include = ["${TOP}/inc/*.toml"]
[sources.app]
files = ["${TOP}/app.log"]
[[rules]]
id = "boom"
match = "BOOM"
""")
    cfg = load_config(path, environ={"TOP": str(tmp_path)})
    assert cfg.settings.state_dir == tmp_path / "state"
    assert cfg.sources["app"].files == (str(tmp_path / "app.log"),)
    assert [r.id for r in cfg.rules] == ["boom", "more"]


@pytest.mark.parametrize("setting", ['state_dir = "${NOPE}/state"', 'include = ["${NOPE}/x.toml"]'])
def test_an_unset_variable_in_a_path_is_an_error_not_a_directory(tmp_path: Path,
                                                                 setting: str) -> None:
    """Never a literal ``${NOPE}`` directory: the variable is named."""
    found = problems(config(tmp_path, setting))
    assert len(found) == 1 and "environment variable NOPE is not set or empty" in found[0]
    assert not list(tmp_path.glob("$*"))


def test_token_file_with_an_unset_variable_says_so(tmp_path: Path) -> None:
    """Not a misleading permissions error about the config's directory."""
    path = write(tmp_path / "logwatch.toml", """\
[destinations.ops]
type = "telegram"
token_file = "${UNSET}"
chat_id = 1
""")
    assert problems(path) == ['logwatch.toml:3: destination "ops": token_file: environment '
                              "variable UNSET is not set or empty"]


def test_deeply_nested_toml_is_one_line_not_a_recursion_error(tmp_path: Path) -> None:
    """2,000 nested arrays: tomllib recurses; the user gets one line."""
    path = write(tmp_path / "logwatch.toml", "x = " + "[" * 2000 + "]" * 2000 + "\n")
    assert problems(path) == ["logwatch.toml: invalid TOML: nested too deeply"]


def test_a_fifo_as_config_is_refused_at_once(tmp_path: Path) -> None:
    """Opening it must not wait for a writer that never comes."""
    fifo = tmp_path / "logwatch.toml"
    os.mkfifo(fifo)
    result = logwatch("check", "-c", str(fifo), timeout=20)
    assert result.returncode == 1
    assert result.stderr == f"{fifo}: cannot read: not a regular file\n"


def test_dev_zero_as_config_is_refused(tmp_path: Path) -> None:
    """A character device is not a config file (nor read to the end)."""
    assert problems(Path("/dev/zero")) == ["/dev/zero: cannot read: not a regular file"]


def test_a_huge_config_is_refused(tmp_path: Path) -> None:
    """Over 4 MiB: refused before parsing."""
    path = write(tmp_path / "logwatch.toml", "# padding\n" * (500 << 10))
    assert stat.S_ISREG(path.stat().st_mode)
    assert problems(path) == [f"{path}: cannot read: larger than 4 MiB, not a config file"]


def test_max_line_length_is_capped(tmp_path: Path) -> None:
    """``2**63 - 1`` would be a line held in memory whole."""
    found = problems(config(tmp_path, f"max_line_length = {2**63 - 1}"))
    assert found == [f"logwatch.toml:3: max_line_length: expected at most 16777216 (16 MiB), "
                     f"got {2**63 - 1}"]
