"""The shipped ``rules.example.toml``: it loads, its tests pass, every rule is tested both ways."""

from __future__ import annotations

import re

import pytest

from logwatch.commands.check import check_config
from logwatch.config import Config, load_config
from logwatch.matching import Matcher
from tests.helpers import REPO, logwatch

EXAMPLE = REPO / "rules.example.toml"
#: "Nov 28 10:00:01 web1 " (with the day padded or not): what the journal form lacks
SYSLOG_PREFIX = re.compile(r"[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d [^\s:]+ ")
#: the fields thresholds and dedup keys are built from, named the same in every rule
SHARED_FIELDS = {"ip", "user", "unit", "process", "pid", "device", "path"}
#: what else a key may use: the machine, a web backend (one per proxied service), a PAM service
KEY_EXTRAS = {"host", "upstream", "service"}


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(EXAMPLE, environ={})


def test_loads_without_any_environment(config: Config) -> None:
    """The Quick start config needs no account and no env var: console destinations only."""
    assert {d.type for d in config.destinations.values()} == {"console"}
    assert set(config.destinations) == {"oncall", "audit"}
    assert config.settings.start_at == "end"
    assert not config.warnings


def test_every_rule_test_passes(config: Config) -> None:
    """``logwatch check`` through the library: no failure, and a good number of cases ran."""
    report = check_config(config)
    assert report.failures == []
    assert report.tests_run >= 2 * len(config.rules)


@pytest.mark.parametrize("rule_id", [r.id for r in load_config(EXAMPLE, environ={}).rules])
def test_rule_has_positive_and_negative_case(config: Config, rule_id: str) -> None:
    """Each rule shows a real line it catches (with its fields) and one it must leave alone."""
    rule = next(r for r in config.rules if r.id == rule_id)
    positives = [t for t in rule.tests if t.match]
    assert positives, f"{rule_id}: no positive [[rules.tests]]"
    assert any(t for t in rule.tests if not t.match), f"{rule_id}: no negative [[rules.tests]]"
    assert all(t.fields for t in positives), f"{rule_id}: a positive case without fields"


def test_every_rule_is_routed_and_has_a_source(config: Config) -> None:
    """Info goes to the audit trail, warning and critical to on-call; no rule reads every source."""
    for rule in config.rules:
        assert rule.source is not None, rule.id
        if rule.severity == "info":
            assert rule.to == ("audit",), rule.id
        else:
            assert "oncall" in rule.to, rule.id


def test_keys_use_the_shared_field_names(config: Config) -> None:
    """Threshold and dedup keys are built from the common field names (or host, upstream)."""
    for rule in config.rules:
        for key in (rule.threshold, rule.dedup):
            if key is not None:
                assert key.by.fields <= SHARED_FIELDS | KEY_EXTRAS, (rule.id, key.by.text)
                assert key.by.fields <= rule.groups | {"host"}, (rule.id, key.by.text)


def test_journal_form_matches_like_the_file_form(config: Config) -> None:
    """Without the date and host prefix (as the journal gives it), each positive still matches."""
    matcher = Matcher(config.rules)
    for rule in config.rules:
        for case in (t for t in rule.tests if t.match):
            if (prefix := SYSLOG_PREFIX.match(case.line)) is not None:
                journal = case.line[prefix.end():]
                found = [fields for r, fields in matcher.match_text(journal) if r.id == rule.id]
                assert found, f"{rule.id}: journal form not matched: {journal!r}"
                assert found[0] == next(f for r, f in matcher.match_text(case.line)
                                        if r.id == rule.id)


def test_check_command_passes() -> None:
    """The real CLI, as the README runs it: exit 0 and a summary naming the rules."""
    result = logwatch("check", "-c", str(EXAMPLE), env={"LOGWATCH_DISCORD_URL": ""})
    assert result.returncode == 0, result.stderr
    assert "OK:" in result.stdout
    assert "tests passed" in result.stdout
