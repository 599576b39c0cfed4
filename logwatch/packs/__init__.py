"""The shipped rule packs: one TOML fragment of the config per service, as package data.

A pack (``logwatch/packs/NAME.toml``) is written in the config's own syntax: its
``[sources.*]`` (Debian/Ubuntu and RHEL paths, a journal match), its ``[[rules]]``
with their ``[[rules.tests]]``, and a ``[pack]`` table that describes it::

    [pack]
    description = "OpenSSH and Dropbear: failed logins, scanners, logins (audit)"
    default = true                    # false: opt-in (e.g. an access log)
    programs = ["sshd", "sshd-session"]  # syslog identifiers that show it runs here
    fail2ban = ["sshd", "sshd-journal"]  # fail2ban filters it covers (bench/coverage.py)

A config enables packs with ``[logwatch] packs = ["default", ...]``; the config
loader reads each like an include (it ignores ``[pack]``); packs that read the
same log define the same source, word for word. Rules send to ``oncall``
(warning, critical) and ``audit`` (info): a destination or ``route`` of that
name, else every destination (see docs/rules.md).

Packs are read with :mod:`importlib.resources`, so this works from a wheel.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from logwatch.errors import LogwatchError

#: how much of the end of a shared log is read to see whether a program writes to it
TAIL_BYTES = 256 * 1024
JOURNALCTL_TIMEOUT = 5.0
_SUFFIX = ".toml"


@dataclass(frozen=True, slots=True)
class Pack:
    """One shipped pack, as its ``[pack]`` table and its contents describe it."""

    name: str
    description: str
    default: bool
    programs: tuple[str, ...]
    fail2ban: tuple[str, ...]
    #: source name -> its files (globs) and journal table, as written
    sources: Mapping[str, Mapping[str, Any]]
    rules: tuple[str, ...]
    #: rule id -> its severity as the pack ships it ("warning" when unsaid)
    severities: Mapping[str, str]
    text: str


def names() -> list[str]:
    """The shipped packs, sorted."""
    return sorted(entry.name[: -len(_SUFFIX)] for entry in resources.files(__name__).iterdir()
                  if entry.name.endswith(_SUFFIX) and entry.is_file())


def read_text(name: str) -> str:
    """The TOML text of pack ``name`` (a ``LogwatchError`` if there is no such pack)."""
    if name not in names():
        raise LogwatchError(f'no pack "{name}" (packs: {", ".join(names())})')
    return resources.files(__name__).joinpath(name + _SUFFIX).read_text(encoding="utf-8")


def load(name: str) -> Pack:
    """Pack ``name``, parsed; a ``LogwatchError`` naming the pack if its text is broken."""
    text = read_text(name)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LogwatchError(f"pack {name}: invalid TOML: {exc}") from exc
    meta = data.get("pack")
    if not isinstance(meta, dict) or not isinstance(meta.get("description"), str):
        raise LogwatchError(f"pack {name}: needs a [pack] table with a description")
    rules = data.get("rules", [])
    return Pack(
        name=name,
        description=meta["description"],
        default=bool(meta.get("default", True)),
        programs=tuple(meta.get("programs", ())),
        fail2ban=tuple(meta.get("fail2ban", ())),
        sources=data.get("sources", {}),
        rules=tuple(str(r.get("id")) for r in rules if isinstance(r, dict)),
        severities={str(r.get("id")): str(r.get("severity", "warning"))
                    for r in rules if isinstance(r, dict)},
        text=text,
    )


def all_packs() -> list[Pack]:
    """Every shipped pack, parsed."""
    return [load(name) for name in names()]


def write(directory: Path, chosen: Iterable[str]) -> list[Path]:
    """Copy the ``chosen`` packs into ``directory`` (for ``include``); the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in chosen:
        target = directory / f"{name}{_SUFFIX}"
        target.write_text(read_text(name), encoding="utf-8")
        written.append(target)
    return written


# ---------------------------------------------------------------------------
# Which packs have logs on this machine


def logs_here(pack: Pack, *, journalctl: str | None = None) -> str | None:
    """Why ``pack`` has logs on this machine (``"file /var/log/..."``, ``"journal ..."``), or None.

    A pack that names ``programs`` needs one of them in a source file's last
    :data:`TAIL_BYTES` (``sshd[`` or ``sshd:``) or in the journal; a pack with
    no programs (a service with its own log file) needs that file to exist.
    """
    files = [f for table in pack.sources.values() for f in _strings(table.get("files"))]
    for path in _existing(files):
        if not pack.programs or _mentions(path, pack.programs):
            return f"file {path}"
    tool = journalctl if journalctl is not None else shutil.which("journalctl")
    if tool is None:
        return None
    matches = [f"SYSLOG_IDENTIFIER={p}" for p in pack.programs]
    if not matches:
        matches = [m for table in pack.sources.values() if isinstance(table.get("journal"), dict)
                   for m in _strings(table["journal"].get("match"))]
    for match in matches:
        if _journal_has(tool, match):
            return f"journal {match}"
    return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _existing(patterns: Sequence[str]) -> list[Path]:
    return [Path(p) for pattern in patterns for p in sorted(glob.glob(pattern))
            if os.path.isfile(p)]


def _mentions(path: Path, programs: Sequence[str]) -> bool:
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - TAIL_BYTES))
            tail = f.read()
    except OSError:
        return False
    return any(f"{p}[".encode() in tail or f" {p}: ".encode() in tail for p in programs)


def _journal_has(tool: str, match: str) -> bool:
    try:
        done = subprocess.run([tool, "--quiet", "--no-pager", "-n", "1", "-o", "cat", match],
                              capture_output=True, timeout=JOURNALCTL_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and bool(done.stdout.strip())
