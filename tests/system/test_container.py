"""The package under a real systemd: Debian 12 booted in systemd-nspawn.

Runs only with ``LOGWATCH_SYSTEM_TEST=1`` (``.ci/run`` sets ``require``, which
turns a missing prerequisite into a failure instead of a skip). Needs root,
debootstrap, systemd-nspawn and dpkg-deb, and a Debian mirror the first time
(the root tree is cached, see ``rootfs.sh``).

The host builds the .deb from this checkout, installs it in a copy of the
cached tree, runs ``logwatch init`` there as the README says, and boots the
container; a oneshot unit runs ``checks.py`` against the live service and
powers off. The container shares the host's network, so the alert goes to the
fake Discord on the host's 127.0.0.1. Afterwards the package is purged and
must leave nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakeapi import FakeAPI, iter_embeds
from tests.helpers import REPO

HERE = Path(__file__).parent
MODE = os.environ.get("LOGWATCH_SYSTEM_TEST", "")
NSPAWN = ["systemd-nspawn", "-q", "--keep-unit", "--register=no"]
BOOT_TIMEOUT = 300


def _missing() -> str | None:
    if not MODE:
        return "system test: set LOGWATCH_SYSTEM_TEST=1 (.ci/run runs it as its own step)"
    if os.geteuid() != 0:
        return "system test: needs root (debootstrap, systemd-nspawn)"
    for tool in ("debootstrap", "systemd-nspawn", "dpkg-deb"):
        if shutil.which(tool) is None:
            return f"system test: {tool} is not installed"
    return None


def _require() -> None:
    reason = _missing()
    if reason is None:
        return
    if MODE == "require":
        pytest.fail(f"{reason} (LOGWATCH_SYSTEM_TEST=require)")
    pytest.skip(reason)


def run(*args: str, timeout: float = 600) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(args)}: exit {done.returncode}\n{done.stdout}\n" \
                                 f"{done.stderr}"
    return done.stdout


def in_container(root: Path, *args: str) -> str:
    """Run a command in the tree without booting it (no systemd running)."""
    return run(*NSPAWN, "-D", str(root), *args)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _require()
    out = tmp_path_factory.mktemp("deb")
    return Path(run(str(REPO / "packaging" / "deb" / "build.sh"), str(out)).strip())


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A throw-away copy of the cached Debian 12 tree."""
    _require()
    cached = Path(run("sh", str(HERE / "rootfs.sh"), timeout=1200).strip())
    copy = tmp_path / "root"
    run("cp", "-a", "--reflink=auto", str(cached), str(copy))
    yield copy
    shutil.rmtree(copy, ignore_errors=True)


def prepare(root: Path, deb: Path, discord_url: str, metrics_port: int) -> None:
    """Install the package, ``logwatch init``, an adm log, and the unit that runs the checks."""
    shutil.copy(deb, root / "root" / deb.name)
    in_container(root, "dpkg", "-i", f"/root/{deb.name}")
    in_container(root, "logwatch", "init", "--non-interactive",
                 "--discord-url", discord_url)
    config = root / "etc/logwatch/logwatch.toml"
    config.write_text(config.read_text() + f'\n[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n')
    in_container(root, "logwatch", "check")
    auth = root / "var/log/auth.log"
    auth.write_text("")
    in_container(root, "chown", "root:adm", "/var/log/auth.log")
    auth.chmod(0o640)
    shutil.copy(HERE / "checks.py", root / "root" / "checks.py")
    (root / "etc/systemd/system/logwatch-systest.service").write_text(
        "[Unit]\nDescription=logwatch system test\nAfter=multi-user.target\n\n"
        "[Service]\nType=oneshot\n"
        f"ExecStart=/usr/bin/python3 /root/checks.py {metrics_port} /root/{deb.name}\n")
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "logwatch-systest.service").symlink_to("/etc/systemd/system/logwatch-systest.service")


def boot(root: Path) -> str:
    """Boot the tree until the checks power it off; its console output."""
    try:
        done = subprocess.run([*NSPAWN, "-D", str(root), "--boot", "--console=pipe"],
                              capture_output=True, text=True, timeout=BOOT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the container did not power off within {BOOT_TIMEOUT}s") from exc
    return done.stdout + done.stderr


def results(root: Path, console: str) -> tuple[list[dict[str, Any]], str]:
    path = root / "root/results.jsonl"
    assert path.exists(), f"the checks did not run; console:\n{console[-5000:]}"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    journal = next((r["journal"] for r in rows if "journal" in r), "")
    return [r for r in rows if "check" in r], journal


def test_the_package_under_systemd(root: Path, deb: Path) -> None:
    """Install, init, enable --now, alert, reload bad and good, upgrade, stop, purge."""
    with FakeAPI(discord_window=(5, 0.2)) as fake:
        prepare(root, deb, fake.discord_url(), free_port())
        console = boot(root)
        checks, journal = results(root, console)
        titles = [e["title"] for e in iter_embeds(fake)]
    report = "\n".join(f"{'ok  ' if c['ok'] else 'FAIL'} {c['check']} ({c['seconds']}s): "
                       f"{c['detail']}" for c in checks)
    print(report)
    failed = [c for c in checks if not c["ok"]]
    assert not failed, f"{report}\n--- journal of logwatch.service:\n{journal}"
    assert len(checks) == 9, report
    assert "SSH brute force from 203.0.113.9" in titles
    assert "marker 7" in titles
    assert fake.violations == []

    in_container(root, "dpkg", "--purge", "logwatch-alerts")
    left = [p for p in ("etc/logwatch", "opt/logwatch", "var/lib/private/logwatch",
                        "var/lib/logwatch", "usr/bin/logwatch",
                        "etc/systemd/system/multi-user.target.wants/logwatch.service",
                        "lib/systemd/system/logwatch.service")
            if os.path.lexists(root / p)]
    assert left == [], f"left after purge: {left}"
