"""The matching engine: Hyperscan where its wheel is installed, pure Python otherwise, said."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from logwatch.matching import engine
from tests.helpers import REPO, Daemon, logwatch, write

HAS_HYPERSCAN = importlib.util.find_spec("hyperscan") is not None
needs_hyperscan = pytest.mark.skipif(not HAS_HYPERSCAN, reason="hyperscan is not installed here")

CONFIG = """
[logwatch]
state_dir = "{state}"

[destinations.console]
type = "console"

[sources.auth]
files = ["{log}"]

[[rules]]
id = "ssh-failed"
match = 'Failed password for (?:invalid user )?(?P<user>\\S+) from (?P<ip>\\S+)'

[[rules.tests]]
line = "sshd[1]: Failed password for invalid user ROOT from 192.0.2.7 port 22 ssh2"
fields = {{ user = "ROOT", ip = "192.0.2.7" }}
"""
LINES = ("sshd[1]: Failed password for root from 192.0.2.1 port 22 ssh2\n"
         "CRON[2]: pam_unix(cron:session): session opened for user root\n"
         "sshd[3]: Failed password for invalid user pi from 192.0.2.2 port 22 ssh2\n")


def make_config(tmp_path: Path) -> tuple[Path, Path]:
    """A one-rule config with a test case, and a log with two hits."""
    log = write(tmp_path / "auth.log", LINES)
    config = write(tmp_path / "logwatch.toml", CONFIG.format(state=tmp_path / "state", log=log))
    return config, log


def without_hyperscan(tmp_path: Path) -> Path:
    """A directory with every installed distribution but hyperscan (for ``python -S``)."""
    farm = tmp_path / "site"
    farm.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if not entry.name.lower().startswith("hyperscan"):
            (farm / entry.name).symlink_to(entry)
    return farm


def run_isolated(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -S -m logwatch ARGS`` seeing only ``site`` and the repository."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(site)])}
    env.pop(engine.ENV, None)
    return subprocess.run([sys.executable, "-S", "-m", "logwatch", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=60, check=False)


@needs_hyperscan
def test_hyperscan_runs_where_its_wheel_is_installed(tmp_path: Path) -> None:
    """With the wheel installed, `check` says Hyperscan and the matcher uses its line filter."""
    config, _ = make_config(tmp_path)
    result = logwatch("check", "-c", str(config), env={engine.ENV: ""})
    assert result.returncode == 0, result.stderr
    version = importlib.metadata.version("hyperscan")
    assert f"matching engine: Hyperscan {version}" in result.stdout
    assert engine.current("hyperscan") == engine.Engine("hyperscan", version=version)
    with Daemon(config, env={engine.ENV: ""}) as daemon:
        daemon.wait_stderr(f"matching engine: Hyperscan {version}")
        assert daemon.stop() == 0


def test_hyperscan_is_a_dependency_where_it_has_wheels() -> None:
    """The installed metadata requires hyperscan exactly on Linux x86-64 and aarch64 (CPython)."""
    required = [Requirement(r) for r in importlib.metadata.requires("logwatch-alerts") or []]
    default = [r for r in required if r.name == "hyperscan" and "extra" not in str(r.marker)]
    assert len(default) == 1, required
    marker = default[0].marker
    assert marker is not None
    linux = {"sys_platform": "linux", "platform_python_implementation": "CPython"}
    for machine, wanted in (("x86_64", True), ("aarch64", True), ("armv7l", False),
                            ("riscv64", False)):
        assert marker.evaluate({**linux, "platform_machine": machine}) is wanted, machine
    assert not marker.evaluate({**linux, "sys_platform": "darwin", "platform_machine": "x86_64"})
    here = sys.platform == "linux" and platform.machine() in ("x86_64", "aarch64")
    assert marker.evaluate() is here


def test_pure_python_where_hyperscan_is_not_installed(tmp_path: Path) -> None:
    """Without the module: `check` says so, and `test` finds the same hits."""
    config, log = make_config(tmp_path)
    site = without_hyperscan(tmp_path)
    check = run_isolated(site, "check", "-c", str(config))
    assert check.returncode == 0, check.stderr
    assert "matching engine: pure Python (hyperscan is not installed)" in check.stdout
    found = run_isolated(site, "test", "-c", str(config), str(log), "--json")
    assert found.returncode == 0, found.stderr
    assert found.stdout.count('"rule": "ssh-failed"') == 2, found.stdout


def test_pure_python_where_hyperscan_cannot_load(tmp_path: Path) -> None:
    """A hyperscan that fails to import (a wheel for another CPU) is reported, not a traceback."""
    config, log = make_config(tmp_path)
    broken = write(tmp_path / "broken" / "hyperscan" / "__init__.py",
                   'raise ImportError("libhs.so.5: cannot open shared object file")\n')
    env = {"PYTHONPATH": str(broken.parent.parent), engine.ENV: ""}
    check = logwatch("check", "-c", str(config), env=env)
    assert check.returncode == 0, check.stderr
    assert ("matching engine: pure Python (hyperscan cannot be loaded: libhs.so.5: cannot open "
            "shared object file)") in check.stdout
    found = logwatch("test", "-c", str(config), str(log), "--json", env=env)
    assert found.returncode == 0, found.stderr
    assert found.stdout.count('"rule": "ssh-failed"') == 2, found.stdout


def test_scanner_variable_chooses_pure_python(tmp_path: Path) -> None:
    """LOGWATCH_SCANNER=python is said as the reason."""
    config, _ = make_config(tmp_path)
    check = logwatch("check", "-c", str(config), env={engine.ENV: "python"})
    assert check.returncode == 0, check.stderr
    assert "matching engine: pure Python (LOGWATCH_SCANNER=python)" in check.stdout
