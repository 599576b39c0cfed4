"""Values read from a service's reply, validated and clamped before anything uses them.

A reply can say anything: ``retry_after`` of ``1e12``, ``"abc"``, ``NaN`` or ``null``,
a header of ``inf``, ``parameters`` as a list, a chat id that is a string. Every
function here returns a sane value or a default, never raises, and never lets a
wait grow past :data:`WAIT_MAX` (the sender applies the configured, smaller
``max_retry_wait`` on top).
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from typing import Any, Final

from logwatch.delivery.destinations.http import Answer

#: the longest wait any reply can ask for, whatever the configuration
WAIT_MAX: Final = 86400.0
#: a 429 that gives no usable wait: long enough not to hammer, short enough to recover
DEFAULT_WAIT: Final = 5.0
#: Telegram chat ids fit in 52 bits (Bot API: "at most 52 significant bits")
CHAT_ID_MAX: Final = 2**52


def seconds(value: Any, *, cap: float = WAIT_MAX) -> float | None:
    """``value`` as seconds in ``[0, cap]``; None when it is not a number.

    A number or a numeric string; ``inf`` is clamped to ``cap``, a negative to 0;
    NaN, booleans, ``null`` and text are None.
    """
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, int) and abs(value) > 2**1000:  # 1 and 400 zeros is valid JSON
        value = math.inf if value > 0 else -math.inf
    number = float(value)
    if math.isnan(number):
        return None
    return min(max(number, 0.0), cap)


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (not a bool, not 10**400), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def wait(value: Any, *, default: float = DEFAULT_WAIT, cap: float = WAIT_MAX) -> float:
    """:func:`seconds`, or ``default`` (clamped too) when the value is unusable."""
    found = seconds(value, cap=cap)
    return min(max(default, 0.0), cap) if found is None else found


def retry_after_header(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds (a number or an HTTP date), None when absent or garbage."""
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    found = seconds(raw)
    if found is not None:
        return found
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    try:
        stamp = when.timestamp()
    except (OverflowError, OSError, ValueError):
        return None
    return seconds(stamp - (time.time() if now is None else now))


def json_object(resp: Answer) -> dict[str, Any]:
    """The body as a JSON object, or ``{}`` (HTML, a list, garbage, nothing)."""
    try:
        data = resp.json()
    except (ValueError, RecursionError):  # garbage, bad UTF-8, or nested 100,000 deep
        return {}
    return data if isinstance(data, dict) else {}


def mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else ``{}`` (``parameters`` sent as a list)."""
    return value if isinstance(value, dict) else {}


def chat_id(value: Any) -> int | None:
    """A Telegram chat id (an integer of at most 52 bits, or its decimal string), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text.startswith("-") else text
        if not digits.isascii() or not digits.isdigit() or len(digits) > 16:
            return None
        value = int(text)
    if not isinstance(value, int) or value == 0 or abs(value) >= CHAT_ID_MAX:
        return None
    return value

