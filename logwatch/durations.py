"""Durations written as ``"30s"``, ``"10m"``, ``"1h"``, ``"1d"`` or a bare number of seconds."""

from __future__ import annotations

import math

import regex

#: the longest duration accepted (ten years): longer ones overflow date arithmetic downstream
MAX_DURATION = 3650 * 86400.0
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = regex.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE = regex.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")


def parse_duration(value: object) -> float:
    """Seconds in ``value``; ``"1h30m"`` is 5400. Raises ``ValueError`` with a readable reason."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as \"10m\", got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"a duration must be a finite number, got {value!r}")
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return _bounded(float(value), value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if _WHOLE.fullmatch(text):
            return _bounded(sum(float(n) * _UNITS[u] for n, u in _PART.findall(text)), value)
        if text.isdigit():
            return _bounded(float(text), value)
    raise ValueError(f'expected a duration such as "30s", "10m", "1h" or "1d", got {value!r}')


def _bounded(seconds: float, value: object) -> float:
    # "9" * 400 + "s" parses, as inf: a duration that long is no duration
    if not math.isfinite(seconds):
        raise ValueError(f"a duration must be a finite number, got {value!r}")
    if seconds > MAX_DURATION:
        raise ValueError(f"a duration must be at most 3650d (ten years), got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest readable form: 600 -> ``"10m"``, 5400 -> ``"1h30m"``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    rest = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"
