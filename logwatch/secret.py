"""A string that never shows itself: webhook URLs and bot tokens."""

from __future__ import annotations

from typing import Final

_MASK: Final = "***"


class Secret:
    """Holds a secret value; ``str``, ``repr`` and f-strings print a mask.

    Only :meth:`reveal` gives the value, so every place a secret leaves the
    process (an HTTP request) is easy to find with grep.
    """

    __slots__ = ("_value", "origin")

    def __init__(self, value: str, origin: str = "inline") -> None:
        self._value = value
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
        """``text`` with every occurrence of the secret masked (for foreign error messages)."""
        return text.replace(self._value, _MASK) if self._value else text
