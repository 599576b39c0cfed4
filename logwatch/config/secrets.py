"""Secrets in the config: ``${ENV}`` references, ``*_file`` keys (systemd credentials), inline.

A secret file readable by group or others is refused, as ssh refuses such a key;
an inline secret works, with a warning. The value is wrapped in
:class:`~logwatch.secret.Secret` as soon as it is read, so it is masked everywhere.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import regex

from logwatch.config.document import Document, Loc
from logwatch.secret import Secret

ENV_REF = regex.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def read_secret(
    doc: Document, loc: Loc, subject: str, table: Mapping[str, Any], key: str,
    env: Mapping[str, str], *, read: bool = True,
) -> Secret | None:
    """A secret from ``key`` (``${ENV}`` or inline) or ``key_file``; problems for the rest.

    With ``read=False`` nothing is read: an empty :class:`Secret` whose origin says
    where the value would come from (``file PATH``, ``env VAR``, ``inline``).
    """
    file_key = f"{key}_file"
    if key in table and file_key in table:
        doc.problem((*loc, key), subject, f"{key} and {file_key}: give one, not both")
        return None
    if file_key in table:
        raw = table[file_key]
        if not isinstance(raw, str) or not raw:
            doc.problem((*loc, file_key), subject, f"{file_key}: expected a path, got {raw!r}")
            return None
        if not read:  # a read-only report: where it would come from, no variable required
            return Secret("", f"file {doc.path.parent / os.path.expanduser(expand_env(raw, env))}")
        try:
            raw = expand_env_strict(raw, env)
        except ValueError as exc:
            doc.problem((*loc, file_key), subject, f"{file_key}: {exc}")
            return None
        # a relative path is relative to the config file, not to the working directory
        path = doc.path.parent / os.path.expanduser(raw)
        return secret_from_file(doc, (*loc, file_key), subject, file_key, path)
    if key not in table:
        doc.problem(loc, subject, f"{key}: missing (give {key} = \"${{ENV_VAR}}\" or {file_key})")
        return None
    raw = table[key]
    if not isinstance(raw, str) or not raw:
        doc.problem((*loc, key), subject, f"{key}: expected a string")  # the value may be secret
        return None
    refs = ENV_REF.findall(raw)
    if not read:
        return Secret("", "env " + ", ".join(refs) if refs else "inline")
    missing = [name for name in refs if not env.get(name)]
    if missing:
        doc.problem((*loc, key), subject,
                    f"{key}: environment variable {missing[0]} is not set or empty")
        return None
    if not refs:
        doc.warnings.append(f"{doc.where((*loc, key))}: {subject}{key} is written inline; "
                            f"prefer {key} = \"${{ENV_VAR}}\" or {file_key} "
                            "(kept out of the config)")
        value = raw
    else:
        value = expand_env(raw, env)
    if (bad := secret_value_problem(value)) is not None:
        doc.problem((*loc, key), subject, f"{key}: {bad}")
        return None
    return Secret(value, "env " + ", ".join(refs) if refs else "inline")


def secret_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be a webhook URL or token (it would fail only when first sent)."""
    if "\n" in value or "\r" in value:
        return "holds more than one line (a secret is one line)"
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        return "holds spaces or control characters"
    return None


def secret_from_file(doc: Document, loc: Loc, subject: str, key: str, path: Path) -> Secret | None:
    try:
        info = path.stat()
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            doc.problem(loc, subject, f"{key}: {path} is readable by group or others "
                        f"(mode {stat.S_IMODE(info.st_mode):04o}); run chmod 600 {path}")
            return None
        value = path.read_text(encoding="utf-8").strip()
        if (bad := secret_value_problem(value)) is not None:
            doc.problem(loc, subject, f"{key}: {path}: {bad}")
            return None
    except FileNotFoundError:
        doc.problem(loc, subject, f"{key}: {path}: no such file")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        doc.problem(loc, subject, f"{key}: {path}: cannot read: "
                    f"{getattr(exc, 'strerror', None) or type(exc).__name__}")
        return None
    if not value:
        doc.problem(loc, subject, f"{key}: {path} is empty")
        return None
    return Secret(value, f"file {path}")


def expand_env(text: str, env: Mapping[str, str]) -> str:
    """``${VAR}`` replaced by its value (an unset one by nothing: check first)."""
    return ENV_REF.sub(lambda m: env.get(m[1], ""), text)


def expand_env_strict(text: str, env: Mapping[str, str]) -> str:
    """``${VAR}`` replaced by its value; ValueError naming a variable that is unset or empty."""
    for name in ENV_REF.findall(text):
        if not env.get(name):
            raise ValueError(f"environment variable {name} is not set or empty")
    return expand_env(text, env)
