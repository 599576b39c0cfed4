"""The state file system full: the daemon keeps running, loses nothing, and says so directly."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Daemon, write

CONFIG = """\
[logwatch]
state_dir = "{state}"
start_at = "beginning"
hostname = "hostile"
poll_interval = "100ms"
storm = {{ rate = 100000 }}

[destinations.term]
type = "console"

[sources.app]
files = ["{log}"]

[[rules]]
id = "boom"
match = 'BOOM (?P<n>\\d+)'
title = "boom #{{n}}#"
"""


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB tmpfs (root only: skipped with a reason otherwise)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and mount(8) to mount a small tmpfs")
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs",
                           str(mount)], capture_output=True, text=True, check=False)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the file system is full; the file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            while os.write(fd, b"\0" * 4096):
                pass
    finally:
        os.close(fd)
    with pytest.raises(OSError, match="No space left") as caught:
        os.write(os.open(directory / "probe", os.O_WRONLY | os.O_CREAT), b"x" * 4096)
    assert caught.value.errno == errno.ENOSPC
    return filler


def test_a_full_state_disk_keeps_running_and_loses_nothing(tmp_path: Path,
                                                           small_fs: Path) -> None:
    """Lines read while the state cannot be written are alerted once, after space returns."""
    log = write(tmp_path / "app.log", "BOOM 0\n")
    config = write(tmp_path / "logwatch.toml", CONFIG.format(state=small_fs / "state", log=log))
    with Daemon(config) as daemon:
        daemon.wait_stdout("boom #0#")
        filler = fill(small_fs)
        with log.open("a") as f:
            f.writelines(f"BOOM {n} {'x' * 200}\n" for n in range(1, 400))
        daemon.wait_stderr("database or disk is full")
        daemon.wait_stdout("state disk full")
        assert daemon.proc.poll() is None
        filler.unlink()
        daemon.wait_stdout("boom #399#", timeout=60)
        daemon.wait_stderr("commits succeed again")
        assert daemon.stop() == 0
        out = daemon.stdout
        assert "Traceback" not in daemon.stderr
    counts = [out.count(f"boom #{n}#") for n in range(400)]
    assert counts == [1] * 400
