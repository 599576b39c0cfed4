"""Loading the TOML config: what is accepted, and one clear line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from logwatch.config import (
    ConsoleDestination,
    DiscordDestination,
    TelegramDestination,
    load_config,
    locate_lines,
)
from logwatch.errors import ConfigError
from tests.helpers import logwatch, write

GOOD = """\
[logwatch]
hostname = "web-1"
start_at = "beginning"
ignore = ['from 10\\.0\\.']
storm = { rate = 30, per = "1m" }

[destinations.oncall]
type = "discord"
url = "${TEST_DISCORD_URL}"
thread_id = 42

[destinations.ops]
type = "telegram"
token_file = "telegram.token"
chat_id = -1002552170374

[sources.auth]
files = ["/var/log/auth.log"]
journal = { match = ["SYSLOG_FACILITY=4"] }

[[rules]]
id = "ssh-bruteforce"
source = "auth"
match = 'sshd\\[\\d+\\]: Failed password for (?:invalid user )?(?P<user>\\S*) from (?P<ip>\\S+)'
severity = "warning"
to = ["oncall", "ops"]
title = "SSH brute force from {ip}"
message = "{count} failed passwords for {user} from {ip} on {host} within {within}"
threshold = { count = 5, within = "10m", by = "{ip}" }
dedup = { by = "{ip}", for = "1h" }

[[rules.tests]]
line = "Mar 14 09:21:37 gate sshd[18204]: Failed password for invalid user ROOT from 203.0.113.69 port 50812 ssh2"
fields = { user = "ROOT", ip = "203.0.113.69" }
"""
URL = "https://discord.test/api/webhooks/1/SECRET-TOKEN-xyz"
ENV = {"TEST_DISCORD_URL": URL}


@pytest.fixture
def good(tmp_path: Path) -> Path:
    write(tmp_path / "telegram.token", "123456:SECRET-BOT-TOKEN\n", mode=0o600)
    return write(tmp_path / "logwatch.toml", GOOD)


def problems(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=ENV if env is None else env)
    return list(info.value.problems)


def test_the_spec_example_loads(good: Path) -> None:
    """The sketch of SPEC.md loads into frozen values with secrets masked."""
    config = load_config(good, environ=ENV)
    assert config.settings.hostname == "web-1"
    assert config.settings.start_at == "beginning"
    assert config.settings.storm.rate == 30
    discord = config.destinations["oncall"]
    assert isinstance(discord, DiscordDestination)
    assert discord.url.reveal() == URL
    assert discord.thread_id == 42
    telegram = config.destinations["ops"]
    assert isinstance(telegram, TelegramDestination)
    assert telegram.token.reveal() == "123456:SECRET-BOT-TOKEN"
    assert telegram.chat_id == -1002552170374
    rule = config.rules[0]
    assert rule.threshold is not None and rule.threshold.within == 600
    assert rule.dedup is not None and rule.dedup.window == 3600
    assert config.sources["auth"].journal is not None
    assert "SECRET" not in repr(config)


def test_no_destination_means_console(tmp_path: Path) -> None:
    """With no destination configured, alerts go to the console."""
    path = write(tmp_path / "c.toml", '[[rules]]\nid = "x"\nmatch = "x"\n')
    config = load_config(path, environ={})
    assert config.destinations == {"console": ConsoleDestination("console")}
    assert config.rules[0].to == ("console",)


def test_includes_add_rules_and_destinations(tmp_path: Path) -> None:
    """`include` drop-ins add rules, sources and destinations."""
    write(tmp_path / "rules.d" / "a.toml", '[[rules]]\nid = "a"\nmatch = "a"\n')
    write(tmp_path / "rules.d" / "b.toml",
          '[destinations.term]\ntype = "console"\n[[rules]]\nid = "b"\nmatch = "b"\n')
    path = write(tmp_path / "main.toml", '[logwatch]\ninclude = ["rules.d/*.toml"]\n')
    config = load_config(path, environ={})
    assert [r.id for r in config.rules] == ["a", "b"]
    assert list(config.destinations) == ["term"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t.replace('to = ["oncall", "ops"]', 'to = ["oncal"]'),
         'logwatch.toml:26: rules[0] "ssh-bruteforce": to: unknown destination "oncal" '
         "(known: oncall, ops)"),
        (lambda t: t.replace("{count} failed", "{cnt} failed"),
         'logwatch.toml:28: rules[0] "ssh-bruteforce": message: unknown field {cnt}'),
        (lambda t: t.replace("(?P<ip>\\S+)", "(?P<ip>\\S+"),
         'logwatch.toml:24: rules[0] "ssh-bruteforce": match: bad regex at position'),
        (lambda t: t.replace('id = "ssh-bruteforce"', 'id = ""'),
         "logwatch.toml:22: rules[0]: id: missing or empty"),
        (lambda t: t.replace('severity = "warning"', 'severity = "loud"'),
         "severity: expected one of info, warning, critical, got 'loud'"),
        (lambda t: t.replace('within = "10m"', 'within = "ten minutes"'),
         'threshold: within: expected a duration such as "30s"'),
        (lambda t: t.replace('source = "auth"', 'source = "authlog"'),
         'source: unknown source "authlog" (known: auth)'),
    ],
    ids=["unknown-destination", "unknown-field", "bad-regex", "empty-id", "severity",
         "duration", "unknown-source"],
)
def test_each_mistake_is_one_clear_line(good: Path, edit, expected: str) -> None:  # type: ignore[no-untyped-def]
    """A mistake gives one line naming file, line, rule, key and the bad value."""
    good.write_text(edit(GOOD))
    found = problems(good)
    assert len(found) == 1, found
    assert expected in found[0]
    assert "SECRET" not in found[0]


def test_bad_regex_shows_the_regex_error_and_position(tmp_path: Path) -> None:
    """The regex error, and the pattern as written with a caret under the position."""
    path = write(tmp_path / "c.toml", '[[rules]]\nid = "x"\nmatch = \'\\d a(b\'\n')
    (problem,) = problems(path)
    assert problem.startswith("c.toml:3: ")
    assert "bad regex at position 6: missing )" in problem
    assert problem.endswith(":\n    \\d a(b\n          ^")  # the caret is under the end


def test_malformed_toml_names_the_line(tmp_path: Path) -> None:
    """Broken TOML is reported with its line, as an editor would show it."""
    path = write(tmp_path / "c.toml", '[logwatch]\nhostname = "x\n')
    (problem,) = problems(path)
    assert problem.startswith("c.toml:2: invalid TOML: ")


def test_all_problems_are_reported_together(good: Path) -> None:
    """Every problem is listed, not only the first."""
    good.write_text(GOOD.replace('to = ["oncall", "ops"]', 'to = ["oncal"]')
                    .replace("{count} failed", "{cnt} failed")
                    + '\n[[rules]]\nid = "ssh-bruteforce"\nmatch = "x"\n')
    found = problems(good)
    assert len(found) == 3
    assert any("duplicate of the rule at logwatch.toml:21" in p for p in found)


def test_missing_secret_file(good: Path) -> None:
    """A secret file that does not exist is named."""
    (good.parent / "telegram.token").unlink()
    (problem,) = problems(good)
    assert 'destination "ops": token_file: ' in problem
    assert "telegram.token: no such file" in problem


def test_world_readable_secret_file_is_refused(good: Path) -> None:
    """As ssh refuses a key others can read, logwatch refuses such a secret file."""
    (good.parent / "telegram.token").chmod(0o644)
    (problem,) = problems(good)
    assert "readable by group or others (mode 0644); run chmod 600" in problem
    assert "SECRET" not in problem


def test_missing_environment_variable(good: Path) -> None:
    """`${VAR}` that is not set is an error that names the variable, not its value."""
    (problem,) = problems(good, env={})
    assert "url: environment variable TEST_DISCORD_URL is not set or empty" in problem


def test_inline_secret_is_a_warning(tmp_path: Path) -> None:
    """An inline secret works but earns a warning that does not repeat it."""
    path = write(tmp_path / "c.toml", f'[destinations.d]\ntype = "discord"\nurl = "{URL}"\n')
    config = load_config(path, environ={})
    assert len(config.warnings) == 1
    assert "written inline" in config.warnings[0]
    assert "SECRET" not in config.warnings[0]


def test_unknown_keys_are_reported(tmp_path: Path) -> None:
    """A misspelt key is not silently ignored."""
    path = write(tmp_path / "c.toml", '[[rules]]\nid = "x"\nmatch = "x"\nseverty = "info"\n')
    (problem,) = problems(path)
    assert "unknown key 'severty'" in problem


def test_locate_lines_follows_arrays_of_tables() -> None:
    """Keys inside the n-th [[rules]] and its [[rules.tests]] get their own line numbers."""
    text = '[[rules]]\nid = "a"\n[[rules]]\nid = "b"\n[[rules.tests]]\nline = "x"\n'
    lines = locate_lines(text)
    assert lines[("rules", 1, "id")] == 4
    assert lines[("rules", 1, "tests", 0, "line")] == 6


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[logwatch\n', "invalid TOML"),
        ('[[rules]]\nid = "x"\nmatch = "(?P<a>x"\n', "bad regex"),
        ('[[rules]]\nid = "x"\nmatch = "(?V1)x"\n', "match: bad regex: "),
        ('[[rules]]\nid = "x"\nmatch = "x"\nto = ["nowhere"]\n', 'unknown destination "nowhere"'),
        ('[[rules]]\nid = "x"\nmatch = "x"\ntitle = "{nope}"\n', "unknown field {nope}"),
        ('[[rules]]\nid = ""\nmatch = "x"\n', "id: missing or empty"),
        ('[[rules]]\nid = "x"\nmatch = "x"\n[[rules]]\nid = "x"\nmatch = "y"\n', "duplicate"),
        ('[destinations.t]\ntype = "telegram"\ntoken_file = "/nonexistent/token"\nchat_id = 1\n',
         "no such file"),
    ],
    ids=["toml", "regex", "regex-version", "destination", "field", "empty-id", "duplicate-id", "secret-file"],
)
def test_check_command_exits_1_with_one_line_and_no_traceback(
    tmp_path: Path, text: str, needle: str
) -> None:
    """`logwatch check` on each bad input: exit 1, one line naming the problem, no traceback."""
    path = write(tmp_path / "c.toml", text)
    result = logwatch("check", "-c", str(path))
    assert result.returncode == 1
    assert needle in result.stderr
    # one problem: a regex error adds the pattern and a caret, indented, under its line
    assert len([x for x in result.stderr.strip().splitlines() if not x.startswith(" ")]) == 1
    assert "Traceback" not in result.stderr + result.stdout


def test_world_readable_secret_via_cli(tmp_path: Path) -> None:
    """`logwatch check` refuses a world-readable secret file and never prints the secret."""
    write(tmp_path / "tok", "999:SECRET-BOT-TOKEN", mode=0o644)
    path = write(tmp_path / "c.toml",
                 '[destinations.t]\ntype = "telegram"\ntoken_file = "' + str(tmp_path / "tok")
                 + '"\nchat_id = 1\n')
    result = logwatch("check", "-c", str(path))
    assert result.returncode == 1
    assert "readable by group or others" in result.stderr
    assert "SECRET" not in result.stderr + result.stdout


# -- every error, worded so it can be acted upon (issue 14, points 2 and 11) ------------


def test_all_errors_of_one_rule_are_listed(tmp_path: Path) -> None:
    """No early return: a bad `to`, a bad ignore regex and a bad `quiet`, all three."""
    path = write(tmp_path / "c.toml", '[destinations.team]\ntype = "console"\n[[rules]]\n'
                 'id = "a"\nmatch = "x"\nto = ["trem"]\nignore = ["from (10"]\nquiet = "soon"\n')
    found = problems(path)
    assert [p.split(": ", 3)[2].split(":")[0] for p in found] == ["to", "ignore", "quiet"]


def test_a_duplicate_id_does_not_hide_the_rules_other_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[[rules]]\nid = "a"\nmatch = "x"\n'
                 '[[rules]]\nid = "a"\nmatch = "y"\nseverity = "loud"\n')
    found = problems(path)
    assert found[0] == 'c.toml:5: rules[1] "a": id: duplicate of the rule at c.toml:1'
    assert found[1].startswith('c.toml:7: rules[1] "a": severity: expected one of')


def test_unterminated_string_reads_as_such(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[logwatch]\nhostname = "web-1\n')
    (problem,) = problems(path)
    assert problem.startswith("c.toml:2: invalid TOML: unterminated string")
    assert "Illegal character" not in problem


def test_included_files_are_named_by_path(tmp_path: Path) -> None:
    """Two drop-ins may share a name in different folders: the path says which."""
    write(tmp_path / "rules.d" / "ssh.toml", '[[rules]]\nid = "a"\nmatch = "x"\nto = ["no"]\n')
    path = write(tmp_path / "c.toml", '[logwatch]\ninclude = ["rules.d/*.toml"]\n')
    (problem,) = problems(path)
    assert problem.startswith(f"{tmp_path / 'rules.d' / 'ssh.toml'}:4: ")


def test_a_failing_rule_test_points_at_its_own_line(tmp_path: Path) -> None:
    """`check` names the [[rules.tests]] that fails, not the [[rules]] it belongs to."""
    path = write(tmp_path / "c.toml", '[[rules]]\nid = "a"\nmatch = "(?P<user>x)y"\n'
                 '[[rules.tests]]\nline = "xy"\n[[rules.tests]]\nline = "zz"\n')
    result = logwatch("check", "-c", str(path))
    assert result.returncode == 1
    assert 'c.toml:6: rule "a": tests[1]: expected a match' in result.stderr


def test_a_mistyped_test_field_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[[rules]]\nid = "a"\nmatch = "(?P<user>x)y"\n'
                 '[[rules.tests]]\nline = "xy"\nfields = { usr = "x" }\n')
    result = logwatch("check", "-c", str(path))
    assert result.returncode == 1
    assert "fields: no field 'usr' in the pattern (its fields: user)" in result.stderr
    assert "None" not in result.stderr


def test_a_config_that_watches_nothing_is_warned_about(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", '[logwatch]\nhostname = "x"\n')
    result = logwatch("check", "-c", str(path))
    assert result.returncode == 0
    assert "no rules and no sources: this config watches nothing" in result.stdout
    assert "0 rules, 0 tests passed, 0 sources, 1 destination (console)" in result.stdout


def test_batch_wait_and_rescan_interval(good: Path) -> None:
    """The steady state's knobs: read as durations, batch_wait bounded to 0-1 s."""
    good.write_text(GOOD.replace("[logwatch]\n", '[logwatch]\nbatch_wait = "20ms"\n'
                                 'rescan_interval = "1m"\n', 1))
    settings = load_config(good, environ=ENV).settings
    assert (settings.batch_wait, settings.rescan_interval) == (0.02, 60.0)
    good.write_text(GOOD.replace("[logwatch]\n", '[logwatch]\nbatch_wait = "2s"\n', 1))
    found = problems(good)
    assert len(found) == 1 and 'batch_wait: expected a duration from "0s" to "1s"' in found[0]
