"""Another local user, for tests where who owns or writes a file matters.

They need root (to create the user and act as it): a user's run skips them with the reason;
``LOGWATCH_REQUIRE_USERS=1`` (``.ci/run``, as root) fails them instead.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import site
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest

from tests.helpers import REPO

NAME = "logwatch-hostile"


def _skip(reason: str) -> NoReturn:
    if os.environ.get("LOGWATCH_REQUIRE_USERS") == "1":
        pytest.fail(reason + ", and LOGWATCH_REQUIRE_USERS=1 says these tests must run")
    pytest.skip(reason)


def other_user() -> pwd.struct_passwd:
    """An unprivileged user (created with useradd if root); skip with a reason otherwise."""
    if os.geteuid() != 0:
        _skip("needs root to create another user and act as it")
    try:
        return pwd.getpwnam(NAME)
    except KeyError:
        pass
    if shutil.which("useradd") is None:
        _skip("useradd is not installed")
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    NAME], check=True, capture_output=True)
    return pwd.getpwnam(NAME)


def as_user(user: pwd.struct_passwd) -> dict[str, object]:
    """``subprocess`` keyword arguments that run the child as ``user``."""
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


#: the distribution's Python, for a user who cannot reach this one
SYSTEM_PYTHON = "/usr/bin/python3"


def python_as(user: pwd.struct_passwd) -> tuple[str, dict[str, str]]:
    """A Python ``user`` can run logwatch with, and the environment it needs; else skip.

    This one, if the user can reach it; if not (pyenv's under /root, 0700), the system's
    given this one's installed packages: they import if it is the same version.
    """
    tries = [(sys.executable, dict(os.environ))]
    if os.path.exists(SYSTEM_PYTHON):
        packages = os.pathsep.join(site.getsitepackages())
        tries.append((SYSTEM_PYTHON, {**os.environ, "PYTHONPATH": packages}))
    for python, env in tries:
        try:
            subprocess.run([python, "-c", "import logwatch.cli"], check=True,
                           capture_output=True, cwd=REPO, timeout=60, env=env,
                           **as_user(user))  # type: ignore[call-overload]
        except (OSError, subprocess.CalledProcessError):
            continue
        return python, env
    _skip(f"user {user.pw_name} can run neither {sys.executable} nor a system Python "
                "of its version with logwatch")


#: capability numbers (linux/capability.h) and the capset ABI version of 64-bit sets
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2
_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


@contextmanager
def file_modes_apply() -> Iterator[None]:
    """Make this thread obey file modes, as a user's would, even as root.

    Root reads a mode-0 file through CAP_DAC_OVERRIDE (and CAP_DAC_READ_SEARCH). Both
    leave this thread's effective set for the block (capabilities are per thread in Linux;
    they stay permitted, so they come back after it). Outside root: nothing to do.
    """
    if os.geteuid() != 0:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        pytest.fail(f"capget: {os.strerror(ctypes.get_errno())}")
    saved = data[0].effective
    data[0].effective &= ~((1 << _CAP_DAC_OVERRIDE) | (1 << _CAP_DAC_READ_SEARCH))
    if libc.capset(ctypes.byref(header), data) != 0:
        pytest.fail(f"capset: {os.strerror(ctypes.get_errno())}")
    try:
        yield
    finally:
        data[0].effective = saved
        if libc.capset(ctypes.byref(header), data) != 0:  # the rest of the run needs them
            pytest.fail(f"capset (restoring): {os.strerror(ctypes.get_errno())}")
