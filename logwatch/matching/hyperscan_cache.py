"""Compiled Hyperscan databases, kept on disk between runs.

Compiling the line filter's database for 50 rules takes Hyperscan a few tenths
of a second, more than scanning 100 MB of logs; loading a compiled one takes
microseconds. Each database is saved under the cache directory, named by a hash
of everything it was built from (the expressions, flags, the Hyperscan version),
so an edited rule simply gets a new file and a stale one is never used.

The translations of the rule patterns into those expressions are kept too
(:func:`load_translations`, :func:`save_translations`): worked out again on every
start, they took longer than loading the databases, for as many rules. Their file
is named by a hash of the code that translates (its source, the Python and
``regex`` versions), so a new version of logwatch never reads an older one's.

Where: ``$CACHE_DIRECTORY`` (systemd's ``CacheDirectory=``), else
``$XDG_CACHE_HOME/logwatch``, else ``~/.cache/logwatch``. A file is trusted only
if this user owns it and nobody else can write it or its directory; anything
wrong (missing, foreign, corrupt, built for another CPU) means "compile again",
never an error. Writing is best effort too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: changes whenever the file format or what goes into the key does
FORMAT = b"logwatch-hsdb-2\n"
TRANSLATIONS_FORMAT = b"logwatch-translations-1\n"


def cache_dir() -> Path:
    """Where compiled databases go."""
    systemd = os.environ.get("CACHE_DIRECTORY", "").split(":")[0]
    if systemd:
        return Path(systemd)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "logwatch"


def key(hyperscan: Any, options: Mapping[int, Sequence[tuple[bytes, int]]]) -> str:
    """The file name for a database built from ``options``: per pattern index, the
    (expression, flags) pairs to try in turn."""
    digest = hashlib.sha256(FORMAT)
    digest.update(f"{getattr(hyperscan, '__version__', '?')}\n".encode())
    for index, choices in options.items():
        for expression, flags in choices:
            digest.update(b"%d %d %d:%s\n" % (index, flags, len(expression), expression))
    return f"linefilter-{digest.hexdigest()[:32]}.hsdb"


def load(hyperscan: Any, name: str) -> tuple[Any, dict[int, int]] | None:
    """The database saved as ``name`` and the option it took per index, or ``None``."""
    try:
        data = _read(name)
        if data is None:
            return None
        header, chosen, blob = data.split(b"\n", 2)
        if header + b"\n" != FORMAT:
            return None
        db = hyperscan.loadb(blob, hyperscan.HS_MODE_BLOCK)
        db.scratch = hyperscan.Scratch(db)
        return db, {int(i): int(choice) for i, choice in json.loads(chosen)}
    except Exception as exc:  # corrupt, foreign, another CPU: compile instead
        log.debug("compiled line filter %s not used: %s", name, exc)
        return None


def save(hyperscan: Any, name: str, db: Any, chosen: Mapping[int, int]) -> None:
    """Keep ``db`` for the next run (best effort: a failure costs only a compile)."""
    _write(name, lambda: FORMAT + json.dumps(list(chosen.items())).encode() + b"\n"
           + hyperscan.dumpb(db))


def load_translations(name: str) -> dict[str, Any]:
    """The translations saved as ``name`` (text keys, JSON values), or ``{}``."""
    try:
        data = _read(name)
        if data is None:
            return {}
        header, _, body = data.partition(b"\n")
        value = json.loads(body)
        if header + b"\n" != TRANSLATIONS_FORMAT or not isinstance(value, dict):
            return {}
        return value
    except Exception as exc:  # corrupt, foreign: translate again
        log.debug("saved translations %s not used: %s", name, exc)
        return {}


def save_translations(name: str, translations: Mapping[str, Any]) -> None:
    """Keep ``translations`` for the next run (best effort, as :func:`save`)."""
    _write(name, lambda: TRANSLATIONS_FORMAT + json.dumps(translations, sort_keys=True).encode())


def _read(name: str) -> bytes | None:
    """The file ``name`` of the cache, if it is there and trusted (see the module docstring)."""
    path = cache_dir() / name
    try:
        if not _private(path.parent):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as stream:
        if not _private_stat(os.fstat(stream.fileno())):
            return None
        return stream.read()


def _write(name: str, blob: Callable[[], bytes]) -> None:
    """Replace the file ``name`` of the cache with ``blob()``, best effort."""
    directory = cache_dir()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(directory):
            return
        data = blob()
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, directory / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except Exception as exc:
        log.debug("%s not saved in %s: %s", name, directory, exc)


def _private(directory: Path) -> bool:
    return _private_stat(os.stat(directory))


def _private_stat(info: os.stat_result) -> bool:
    """Owned by this user, writable by nobody else."""
    return info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
