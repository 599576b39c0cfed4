"""The systemd unit: what it must say, and what systemd-analyze thinks of it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

UNIT = REPO / "systemd" / "logwatch.service"
EXEC_START = "/opt/logwatch/bin/logwatch"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def directives(text: str) -> dict[str, list[str]]:
    """``Key=value`` lines of the unit, every value of a repeated key in order."""
    found: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run systemd-analyze; its pager and colours off."""
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, *args], capture_output=True, text=True, cwd=cwd, timeout=60, check=False,
        env={"SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0", "PATH": "/usr/bin:/bin",
             "LANG": "C.UTF-8"},
    )


@pytest.fixture
def runnable_unit(tmp_path: Path) -> Path:
    """The unit, copied, with ExecStart pointing at a binary that exists here.

    ``verify`` checks that ExecStart is executable, and /opt/logwatch is where
    the unit is installed, not where the tests run; everything else is verbatim.
    """
    text = UNIT.read_text(encoding="utf-8")
    assert f"ExecStart={EXEC_START} " in text
    copy = tmp_path / "logwatch.service"
    copy.write_text(text.replace(EXEC_START, f"{sys.executable} -m logwatch"), encoding="utf-8")
    return copy


class TestContents:
    """The promises of SPEC promise 8, read from the unit file itself."""

    def test_notify_with_watchdog_and_reload(self) -> None:
        """Type=notify, a watchdog, SIGHUP for reload, the documented ExecStart."""
        d = directives(UNIT.read_text(encoding="utf-8"))
        assert d["Type"] in (["notify"], ["notify-reload"])
        assert d["WatchdogSec"][0] not in ("0", "infinity")
        assert d["ExecStart"] == [f"{EXEC_START} run -c /etc/logwatch/logwatch.toml"]
        if d["Type"] == ["notify"]:
            # the shell's kill: a minimal image has no /bin/kill (procps)
            assert d["ExecReload"] == ["""/bin/sh -c 'kill -HUP "$$MAINPID"'"""]

    def test_not_root(self) -> None:
        """A dynamic user in the groups that read /var/log and the journal."""
        d = directives(UNIT.read_text(encoding="utf-8"))
        assert d.get("DynamicUser") == ["yes"] or d.get("User", ["root"]) != ["root"]
        assert set(d["SupplementaryGroups"][0].split()) == {"adm", "systemd-journal"}
        assert d["StateDirectory"] == ["logwatch"]
        assert d["CapabilityBoundingSet"] == [""]

    def test_sandbox(self) -> None:
        """The sandboxing the issue names, each present."""
        d = directives(UNIT.read_text(encoding="utf-8"))
        assert d["ProtectSystem"] == ["strict"]
        assert d["NoNewPrivileges"] == ["yes"]
        assert d["MemoryDenyWriteExecute"] == ["yes"]
        assert d["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
        assert "@system-service" in d["SystemCallFilter"]

    def test_credentials_for_both_secrets(self) -> None:
        """Each secret is loaded, has a harmless default, and shows where the config reads it."""
        d = directives(UNIT.read_text(encoding="utf-8"))
        for name in ("discord", "telegram"):
            assert f"{name}:/etc/logwatch/credentials/{name}" in d["LoadCredential"]
            assert any(v.startswith(f"{name}:") for v in d["SetCredential"])
        assert d["BindReadOnlyPaths"] == ["%d:/etc/logwatch/credentials"]


@needs_analyze
class TestSystemdAnalyze:
    """systemd-analyze, run for real on the unit."""

    def test_verify(self, runnable_unit: Path) -> None:
        """``systemd-analyze verify`` passes with nothing to say about our unit."""
        result = analyze("verify", str(runnable_unit), cwd=runnable_unit.parent)
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "logwatch.service" not in output, output

    def test_verify_catches_a_typo(self, runnable_unit: Path) -> None:
        """The check above can fail: a misspelt directive is reported."""
        text = runnable_unit.read_text(encoding="utf-8")
        runnable_unit.write_text(text.replace("ProtectSystem=", "ProtectSytem="), encoding="utf-8")
        result = analyze("verify", str(runnable_unit), cwd=runnable_unit.parent)
        assert "ProtectSytem" in result.stdout + result.stderr

    def test_security_rating(self, tmp_path: Path) -> None:
        """``systemd-analyze security --offline=yes`` rates the unit 2.0 or lower."""
        copy = tmp_path / "logwatch.service"
        shutil.copy(UNIT, copy)
        result = analyze("security", "--offline=yes", str(copy), cwd=tmp_path)
        output = result.stdout + result.stderr
        assert "Invalid syntax" not in output, output
        match = re.search(r"Overall exposure level for logwatch\.service: (\d+\.\d+)", output)
        assert match, output
        assert float(match[1]) <= 2.0, output
