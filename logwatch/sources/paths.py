"""Which files the configured paths and globs name now, and why one cannot be followed.

A glob never picks up rotated or compressed names (``syslog*`` vs ``syslog.1``); a
missing file is waited for, while an unreadable directory or a path that is not a
regular file is a problem to report.
"""

from __future__ import annotations

import glob
import os
import re
import stat
from collections.abc import Callable, Sequence

#: rotated or compressed names a wildcard must not pick up (``syslog*`` vs ``syslog.1``)
ROTATED = re.compile(
    r"(\.(gz|xz|bz2|zst|lz4|lzma|z|zip|tgz|bak|old|swp)|\.\d+|[-_.]\d{8}(\d{2})?|~)$",
    re.IGNORECASE,
)
COMPRESSED = re.compile(r"\.(gz|xz|bz2|zst|lz4|lzma|z|zip|tgz)$", re.IGNORECASE)

def has_magic(pattern: str) -> bool:
    return glob.has_magic(pattern)


def literal_dir(pattern: str) -> str:
    """The longest leading directory of ``pattern`` without wildcards."""
    parts = pattern.split(os.sep)
    literal: list[str] = []
    for part in parts[:-1]:
        if has_magic(part):
            break
        literal.append(part)
    return os.sep.join(literal) or (os.sep if pattern.startswith(os.sep) else ".")


def existing_files(patterns: Sequence[str]) -> list[str]:
    """The followable files that ``patterns`` name right now."""
    return sorted(expand(patterns, lambda _key, _msg: None)[0])


def expand(
    patterns: Sequence[str], problem: Callable[[str, str | None], None],
) -> tuple[dict[str, str], list[str]]:
    """Path -> the pattern that named it, and the patterns with nothing (yet) to follow."""
    found: dict[str, str] = {}
    waiting: list[str] = []
    for pattern in patterns:
        before = len(found)
        if has_magic(pattern):
            for path in sorted(glob.glob(pattern)):
                if not ROTATED.search(os.path.basename(path)) and _is_file(path, problem):
                    found.setdefault(path, pattern)
            if len(found) == before:
                _check_dir(literal_dir(pattern), problem)
        elif not COMPRESSED.search(pattern) and _is_file(pattern, problem):
            found.setdefault(pattern, pattern)
        if len(found) == before:
            waiting.append(pattern)
    return found, waiting


def _is_file(path: str, problem: Callable[[str, str | None], None]) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        problem(path, None)
        _check_dir(os.path.dirname(path) or ".", problem)
        return False
    except OSError as exc:
        problem(path, f"cannot reach it ({exc.strerror})")
        return False
    if not stat.S_ISREG(st.st_mode):
        problem(path, "not a regular file, ignored")
        return False
    return True  # a problem opening it is cleared once it opens


def _check_dir(directory: str, problem: Callable[[str, str | None], None]) -> None:
    """A missing file is waited for; a directory we cannot list is a problem to report."""
    try:
        with os.scandir(directory):
            pass
    except FileNotFoundError:
        problem(directory, None)
    except OSError as exc:
        problem(directory, f"cannot list this directory ({exc.strerror})")
    else:
        problem(directory, None)
