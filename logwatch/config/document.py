"""One TOML file being read: its text, where each table and key is, and the problems found.

Every config error names the file and the line (``logwatch.toml:31: ...``):
:func:`locate_lines` maps table paths and keys to line numbers once per file.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import regex

T = TypeVar("T")
D = TypeVar("D")

_ARRAY_HEADER = regex.compile(r"\s*\[\[\s*([^\]]+?)\s*\]\]")
_TABLE_HEADER = regex.compile(r"\s*\[\s*([^\]]+?)\s*\]")
_KEY = regex.compile(r"\s*([A-Za-z0-9_\-]+|\"[^\"]*\"|'[^']*')\s*(?:\.|=)")

Loc = tuple[str | int, ...]


def _dotted(name: str) -> list[str]:
    return [p.strip().strip("\"'") for p in name.split(".")]


def locate_lines(text: str) -> dict[Loc, int]:
    """Map table paths and keys to their line numbers: ``("rules", 2, "to") -> 31``."""
    lines: dict[Loc, int] = {}
    counters: dict[Loc, int] = {}
    current: Loc = ()
    for number, line in enumerate(text.splitlines(), start=1):
        if m := _ARRAY_HEADER.match(line):
            current = _resolve(_dotted(m[1]), counters)
            prefix, index = current[:-1], current[-1]
            counters[prefix] = int(index) + 1
            lines.setdefault(current, number)
        elif m := _TABLE_HEADER.match(line):
            current = _resolve(_dotted(m[1]), counters, array=False)
            lines.setdefault(current, number)
        elif m := _KEY.match(line):
            lines.setdefault((*current, m[1].strip("\"'")), number)
    return lines


def _resolve(names: list[str], counters: dict[Loc, int], *, array: bool = True) -> Loc:
    path: Loc = ()
    for i, name in enumerate(names):
        path = (*path, name)
        last = i == len(names) - 1
        if last and array:
            path = (*path, counters.get(path, 0))
        elif path in counters:  # a parent that is an array of tables: its latest element
            path = (*path, counters[path] - 1)
    return path


@dataclass
class Document:
    """One TOML file being read, and the problems found so far (shared by all files)."""

    path: Path
    lines: dict[Loc, int]
    problems: list[str]
    warnings: list[str]
    #: how messages name the file: the main config by its name, an included one by its path
    label: str = ""
    #: a shipped rule pack (logwatch/packs/NAME.toml), not a file of the user's
    pack: bool = False

    @property
    def name(self) -> str:
        """How messages name the file: ``logwatch.toml``, an include's path, a shipped pack."""
        return f"logwatch/packs/{self.path.name}" if self.pack else self.label or self.path.name

    def where(self, loc: Loc) -> str:
        for end in range(len(loc), 0, -1):
            if (line := self.lines.get(loc[:end])) is not None:
                return f"{self.name}:{line}"
        return self.name

    def problem(self, loc: Loc, subject: str, message: str) -> None:
        self.problems.append(f"{self.where(loc)}: {subject}{message}")

    def get(
        self,
        table: Mapping[str, Any],
        loc: Loc,
        subject: str,
        key: str,
        convert: Callable[[Any], T],
        default: D,
    ) -> T | D:
        """``table[key]`` passed through ``convert``; a problem (and ``default``) if it fails."""
        if key not in table:
            return default
        try:
            return convert(table[key])
        except (ValueError, TypeError) as exc:
            self.problem((*loc, key), subject, f"{key}: {exc}")
            return default


#: a config file larger than this is refused (no real one comes near; /dev/zero would)
MAX_CONFIG_BYTES = 4 << 20


def read_toml(path: Path, problems: list[str],
              label: str = "") -> tuple[dict[str, Any], str] | None:
    """The parsed TOML and its text, or None with the reason appended to ``problems``."""
    try:
        text = _read_text(path)
    except FileNotFoundError:
        problems.append(f"{path}: no such config file (write one with `logwatch init -c {path}`, "
                        "or give -c PATH)")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}")
        return None
    except ValueError as exc:  # not a regular file, too large
        problems.append(f"{path}: cannot read: {exc}")
        return None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{label or path.name}:{toml_error(exc)}")
        return None
    except RecursionError:
        problems.append(f"{path.name}: invalid TOML: nested too deeply")
        return None


def _read_text(path: Path) -> str:
    """The file's text: a regular file of at most MAX_CONFIG_BYTES (a FIFO would block)."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer; a regular file ignores it
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        data = f.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ValueError(f"larger than {MAX_CONFIG_BYTES >> 20} MiB, not a config file")
    return data.decode("utf-8")


#: how TOML writes a value over several lines
_MULTI = '"""...""" or ' + "'''...'''"


def toml_error(exc: tomllib.TOMLDecodeError) -> str:
    # tomllib says "Invalid value (at line 3, column 7)": put the line first, as editors do
    msg = str(exc)
    if msg.startswith(("Illegal character '\\n'", "Unterminated string", 'Expected "\'"')):
        _, _, where = msg.partition(" (at ")
        msg = (f"unterminated string: a quoted value must end on its line (use {_MULTI} for "
               f"several lines){' (at ' + where if where else ''}")
    if m := regex.search(r"^(.*) \(at line (\d+), column (\d+)\)$", msg):
        return f"{m[2]}: invalid TOML: {m[1]} (column {m[3]})"
    return f" invalid TOML: {msg}"
