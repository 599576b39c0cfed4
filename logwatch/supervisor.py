"""A daemon thread's loop that never dies silently.

:func:`supervise` runs a loop; an unexpected exception is logged as one line (its
type, a redacted first line of its message and where it was raised, never a
traceback, which could carry a secret), handed to ``report`` (so ``status`` can
name it) and the loop is started again after an exponential backoff.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

RESTART_BASE = 1.0
RESTART_CAP = 60.0


def supervise(
    name: str,
    loop: Callable[[], None],
    *,
    report: Callable[[str, int], None],
    pause: Callable[[float], bool],
    redact: Callable[[str], str] = lambda text: text,
    restarts: int = 0,
    base: float = RESTART_BASE,
    cap: float = RESTART_CAP,
) -> int:
    """Run ``loop`` until it returns; return how many restarts it took in all.

    When ``loop`` raises, ``report(line, restarts)`` records it, then ``pause(delay)``
    waits (it returns True when the thread should stop instead of restarting).
    """
    crashes = 0
    while True:
        try:
            loop()
        except Exception as exc:  # the point: whatever it was, keep running
            crashes += 1
            restarts += 1
            line = describe_crash(exc, redact)
            delay = min(cap, base * 2 ** min(crashes - 1, 30))
            log.error("%s: crashed: %s; restarting in %.1fs (restart %d)", name, line, delay,
                      restarts)
            try:
                report(line, restarts)
            except Exception as again:  # the state database may be the cause
                log.error("%s: cannot record the crash: %s", name, describe_crash(again, redact))
            if pause(delay):
                return restarts
        else:
            return restarts


def describe_crash(exc: BaseException, redact: Callable[[str], str]) -> str:
    """``ValueError: bad thing (at delivery.py:123)``: one printable, redacted line."""
    message = redact(str(exc)).strip().splitlines()[0] if str(exc).strip() else ""
    message = "".join(ch if ch.isprintable() else "?" for ch in message)[:200]
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}{': ' + message if message else ''}{where}"
