"""A string that never shows itself: webhook URLs and bot tokens.

A service may echo a secret back in an error (a 404 quoting the webhook path,
Telegram quoting the token URL-encoded): :meth:`Secret.redact` masks every
encoding of every secret part of the value, see :func:`secret_parts`.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

import regex

_MASK: Final = "***"
#: a part shorter than this is not masked alone (a webhook named "hook" is no secret)
MIN_PART: Final = 8


class Secret:
    """Holds a secret value; ``str``, ``repr`` and f-strings print a mask.

    Only :meth:`reveal` gives the value, so every place a secret leaves the
    process (an HTTP request) is easy to find with grep.
    """

    __slots__ = ("_pattern", "_value", "origin")

    def __init__(self, value: str, origin: str = "inline") -> None:
        self._value = value
        self._pattern: regex.Pattern[str] | None = None
        #: where the value came from, safe to print: "env LOGWATCH_URL", "file /path", "inline"
        self.origin = origin

    def reveal(self) -> str:
        """The secret itself; never log or format it."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK}, origin={self.origin!r})"

    def __str__(self) -> str:
        return _MASK

    def __format__(self, spec: str) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the secret masked (for foreign error messages).

        Each secret part is found raw, percent-encoded (either case, even once more
        encoded as ``%253A``) or any mix of the two.
        """
        if not self._value:
            return text
        if self._pattern is None:
            self._pattern = _any_encoding(secret_parts(self._value))
        return self._pattern.sub(_MASK, text)


def secret_parts(value: str) -> list[str]:
    """The parts of ``value`` that give it away, longest first.

    The whole value (and its percent-decoded form); for a URL its path and query,
    the last two path segments (a webhook's ``id/token``), the last segment and
    each query value; for a bot token ``123456:tok-...`` the part after the colon.
    """
    parts = {value, unquote(value)}
    if "://" in value:
        url = urlsplit(value)
        segments = [seg for seg in url.path.split("/") if seg]
        parts.update(p for p in (url.path, url.query, "/".join(segments[-2:]),
                                 segments[-1] if segments else "") if len(p) >= MIN_PART)
        parts.update(v for _, v in parse_qsl(url.query) if len(v) >= MIN_PART)
    elif ":" in value:
        tail = value.split(":", 1)[1]
        if len(tail) >= MIN_PART:
            parts.add(tail)
    return sorted(parts, key=len, reverse=True)


def _any_encoding(parts: list[str]) -> regex.Pattern[str]:
    """A pattern for each part where every character may also be written ``%XX``."""
    def char(ch: str) -> str:
        encoded = "".join(f"%(?:25)?{_hex(b)}" for b in ch.encode("utf-8"))
        return f"(?:{regex.escape(ch)}|{encoded})"

    return regex.compile("|".join("".join(char(ch) for ch in part) for part in parts))


def _hex(byte: int) -> str:
    return "".join(f"[{c}{c.lower()}]" if c.isalpha() else c for c in f"{byte:02X}")
