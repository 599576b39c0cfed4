"""Symlinks planted in a watched directory are not followed; ones named in the config are."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.helpers import Daemon, write
from tests.hostile.users import as_user, other_user

TOKEN = "123456:tok-SECRET-never-to-be-sent"  # noqa: S105  # a fake token to look for
CONFIG = """\
[logwatch]
state_dir = "{state}"
start_at = "beginning"
hostname = "hostile"
poll_interval = "100ms"

[destinations.term]
type = "console"

[sources.app]
files = [{files}]

[[rules]]
id = "anything"
match = '(?P<all>.+)'
title = "line: {{all}}"
"""


def test_a_symlink_planted_by_another_user_is_not_followed(tmp_path: Path, shared: Path) -> None:
    """``evil.log -> the bot token`` in a watched directory: not read, one warning naming it."""
    user = other_user()
    secret = write(tmp_path / "credentials" / "telegram", TOKEN + "\n", mode=0o600)
    logs = shared / "logs"
    logs.mkdir()
    os.chown(logs, user.pw_uid, user.pw_gid)  # the user may write here (not sticky)
    write(logs / "app.log", "an honest line\n")
    subprocess.run(["ln", "-s", str(secret), str(logs / "evil.log")], check=True,
                   **as_user(user))  # type: ignore[call-overload]
    assert (logs / "evil.log").lstat().st_uid == user.pw_uid
    config = write(tmp_path / "logwatch.toml", CONFIG.format(
        state=tmp_path / "state", files=f'"{logs}/*.log"'))
    with Daemon(config) as daemon:
        daemon.wait_stdout("line: an honest line")
        daemon.wait_stderr("evil.log: a symbolic link met through a glob, not followed")
        with (logs / "app.log").open("a") as f:
            f.write("a second honest line\n")
        daemon.wait_stdout("line: a second honest line")
        assert daemon.stop() == 0
        assert TOKEN not in daemon.stdout and "tok-SECRET" not in daemon.stderr
        warnings = [line for line in daemon.stderr.splitlines()
                    if " WARNING " in line and "symbolic link" in line]
        assert len(warnings) == 1 and "evil.log" in warnings[0]


def test_a_symlink_named_in_the_config_is_trusted(tmp_path: Path) -> None:
    """``/var/log/syslog -> ...`` setups: the configured path itself may be a link."""
    real = write(tmp_path / "real" / "app.log", "through the link\n")
    link = tmp_path / "app.log"
    link.symlink_to(real)
    config = write(tmp_path / "logwatch.toml", CONFIG.format(
        state=tmp_path / "state", files=f'"{link}"'))
    with Daemon(config) as daemon:
        daemon.wait_stdout("line: through the link")
        assert daemon.stop() == 0
        assert "symbolic link" not in daemon.stderr
