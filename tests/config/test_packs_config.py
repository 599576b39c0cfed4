"""Packs in the config: ``[logwatch] packs``, ``[overrides.RULE_ID]``, ``route``, and the
errors that name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from logwatch import packs
from logwatch.config import Config, load_config
from logwatch.errors import ConfigError
from tests.helpers import logwatch, write

DESTINATIONS = """
[destinations.oncall]
type = "console"
min_severity = "warning"

[destinations.audit]
type = "console"
"""


def load(tmp_path: Path, text: str) -> Config:
    path = write(tmp_path / "logwatch.toml", f'[logwatch]\nstate_dir = "{tmp_path}/state"\n{text}')
    return load_config(path, environ={})


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return list(info.value.problems)


def rule(config: Config, rule_id: str) -> object:
    return next(r for r in config.rules if r.id == rule_id)


def test_packs_bring_their_sources_and_rules(tmp_path: Path) -> None:
    config = load(tmp_path, 'packs = ["ssh", "kernel"]\n' + DESTINATIONS)
    assert config.settings.packs == ("ssh", "kernel")
    assert {r.id for r in config.rules} == set(packs.load("ssh").rules) | set(
        packs.load("kernel").rules)
    assert {"auth", "kernel"} <= set(config.sources)


def test_default_means_every_pack_that_is_on_by_default(tmp_path: Path) -> None:
    config = load(tmp_path, 'packs = ["default"]\n' + DESTINATIONS)
    want = [n for n in packs.names() if packs.load(n).default]
    assert list(config.settings.packs) == want
    assert len(config.rules) == sum(len(packs.load(n).rules) for n in want)


def test_unknown_pack_names_the_line(tmp_path: Path) -> None:
    found = problems(tmp_path, 'packs = ["ssh", "shh"]\n' + DESTINATIONS)
    assert len(found) == 1
    assert found[0].startswith('logwatch.toml:3: packs: no pack "shh" (packs: default, ')


def test_override_changes_a_pack_rule_without_copying_it(tmp_path: Path) -> None:
    config = load(tmp_path, 'packs = ["ssh"]\n' + DESTINATIONS + """
[overrides.ssh-auth-failure]
severity = "critical"
threshold = { count = 10, within = "1h", by = "{ip}" }
dedup = false

[overrides.ssh-login]
enabled = false
""")
    failure = rule(config, "ssh-auth-failure")
    assert failure.severity == "critical"  # type: ignore[attr-defined]
    assert failure.threshold.count == 10  # type: ignore[attr-defined]
    assert failure.threshold.within == 3600  # type: ignore[attr-defined]
    assert failure.dedup is None  # type: ignore[attr-defined]
    assert failure.tests  # type: ignore[attr-defined]  # the pack's own tests still apply
    assert "ssh-login" not in {r.id for r in config.rules}


def test_override_errors_name_the_override_line(tmp_path: Path) -> None:
    found = problems(tmp_path, 'packs = ["ssh"]\n' + DESTINATIONS + """
[overrides.ssh-auth-failur]
severity = "warning"

[overrides.ssh-login]
severity = "loud"
to = ["pager"]
title = "{nope}"
""")
    assert found[0].startswith('logwatch.toml:12: overrides.ssh-auth-failur: no rule '
                               '"ssh-auth-failur" to override (did you mean ssh-auth-failure,')
    assert found[1].startswith("logwatch.toml:16: overrides.ssh-login: severity: expected one of")
    assert found[2].startswith('logwatch.toml:17: overrides.ssh-login: to: unknown destination '
                               '"pager"')
    assert found[3].startswith("logwatch.toml:18: overrides.ssh-login: title: unknown field "
                               "{nope}")
    assert len(found) == 4


def test_a_rule_of_the_same_id_as_a_packs_points_to_overrides(tmp_path: Path) -> None:
    found = problems(tmp_path, 'packs = ["ssh"]\n' + DESTINATIONS + """
[[rules]]
id = "ssh-login"
match = "Accepted"
""")
    assert len(found) == 1
    assert found[0].startswith('logwatch.toml:13: rules[0] "ssh-login": id: the pack rule at '
                               "logwatch/packs/ssh.toml:")
    assert found[0].endswith("change it with [overrides.ssh-login] instead of a copy")


def test_pack_roles_go_to_every_destination_without_oncall_or_audit(tmp_path: Path) -> None:
    """A config with only a console destination works: each destination filters by severity."""
    config = load(tmp_path, 'packs = ["ssh"]\n[destinations.console]\ntype = "console"\n')
    assert {r.to for r in config.rules} == {("console",)}


def test_no_destination_at_all_is_the_console(tmp_path: Path) -> None:
    config = load(tmp_path, 'packs = ["default"]\n')
    assert set(config.destinations) == {"console"}
    assert {r.to for r in config.rules} == {("console",)}


def test_route_maps_pack_roles_onto_destinations(tmp_path: Path) -> None:
    config = load(tmp_path, """packs = ["ssh"]
route = { oncall = ["discord", "telegram"], audit = ["telegram"] }

[destinations.discord]
type = "console"

[destinations.telegram]
type = "console"
""")
    for r in config.rules:
        want = ("telegram",) if r.severity == "info" else ("discord", "telegram")
        assert r.to == want, r.id
    assert config.settings.route["audit"] == ("telegram",)


def test_route_errors(tmp_path: Path) -> None:
    found = problems(tmp_path, 'packs = ["ssh"]\nroute = { oncall = ["pager"] }\n'
                     '[destinations.x]\ntype = "console"\n')
    assert found == ['logwatch.toml:4: route: oncall: unknown destination "pager" (known: x)']


def test_a_route_named_like_a_destination_is_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, 'route = { x = ["x"] }\n[destinations.x]\ntype = "console"\n')
    assert found == ['logwatch.toml:3: route: "x" is a destination already; a route name '
                     'stands for destinations']


def test_the_configs_own_source_replaces_the_packs(tmp_path: Path) -> None:
    config = load(tmp_path, 'packs = ["ssh", "pam"]\n' + DESTINATIONS
                  + '[sources.auth]\nfiles = ["/srv/logs/auth.log"]\n')
    assert config.sources["auth"].files == ("/srv/logs/auth.log",)
    assert config.sources["auth"].journal is None


def test_an_opt_in_pack_rule_can_be_switched_on(tmp_path: Path) -> None:
    pack = write(tmp_path / "mine.toml", """
[sources.app]
files = ["/var/log/app.log"]

[[rules]]
id = "app-error"
source = "app"
match = "ERROR (?P<what>.*)"
enabled = false
""")
    config = load(tmp_path, f'include = ["{pack.name}"]\n' + DESTINATIONS
                  + '[overrides.app-error]\nenabled = true\n')
    assert [r.id for r in config.rules] == ["app-error"]


def test_check_runs_the_packs_tests(tmp_path: Path) -> None:
    path = write(tmp_path / "logwatch.toml",
                 f'[logwatch]\nstate_dir = "{tmp_path}/state"\npacks = ["ssh"]\n' + DESTINATIONS)
    done = logwatch("check", "-c", str(path))
    assert done.returncode == 0, done.stderr
    assert f"OK: {len(packs.load('ssh').rules)} rules" in done.stdout
