"""Another local user, for tests where who owns or writes a file matters."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys

import pytest

from tests.helpers import REPO

NAME = "logwatch-hostile"


def other_user() -> pwd.struct_passwd:
    """An unprivileged user (created with useradd if root); skip with a reason otherwise."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create another user and act as it")
    try:
        return pwd.getpwnam(NAME)
    except KeyError:
        pass
    if shutil.which("useradd") is None:
        pytest.skip("useradd is not installed")
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    NAME], check=True, capture_output=True)
    return pwd.getpwnam(NAME)


def as_user(user: pwd.struct_passwd) -> dict[str, object]:
    """``subprocess`` keyword arguments that run the child as ``user``."""
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def python_as(user: pwd.struct_passwd) -> None:
    """Skip unless ``user`` can run this Python (a venv under /root is not theirs to run)."""
    try:
        subprocess.run([sys.executable, "-c", "import logwatch"], check=True, capture_output=True,
                       cwd=REPO, timeout=60, **as_user(user))  # type: ignore[call-overload]
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"user {user.pw_name} cannot run {sys.executable} with logwatch")
