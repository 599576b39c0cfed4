"""A sender's pacing state kept across restarts, so a restart does not cost 429s.

The pacer keeps monotonic times, which mean nothing to the next process; they are
saved as wall-clock times (``{"sent": [...], "blocked_until": t}``) with the
destination's other values, and read back clamped: a time in the future (the clock
went back) counts as now, a block is never longer than the configured cap, and
anything that is not a finite number is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from logwatch.delivery.destinations.replies import finite


def to_saved(sent: Iterable[float], blocked_until: float, *, mono: float,
             wall: float) -> dict[str, Any]:
    """Monotonic ``sent`` times and block as wall-clock times (ms precision)."""
    saved: dict[str, Any] = {"sent": [round(wall - (mono - t), 3) for t in sent]}
    if blocked_until > mono:
        saved["blocked_until"] = round(wall + (blocked_until - mono), 3)
    return saved


def from_saved(saved: Any, *, mono: float, wall: float, cap: float,
               keep: int) -> tuple[list[float], float]:
    """``(sent, blocked_until)`` as monotonic times, from what :func:`to_saved` stored."""
    if not isinstance(saved, dict) or keep <= 0:
        return [], 0.0
    raw = saved.get("sent")
    stamps = [t for t in map(finite, raw if isinstance(raw, list) else []) if t is not None]
    # an age is at least 0 (the clock went back) and at most the cap (older ones do not count)
    sent = sorted(mono - min(max(wall - t, 0.0), cap) for t in stamps)[-keep:]
    until = finite(saved.get("blocked_until"))
    blocked = 0.0 if until is None else mono + min(max(until - wall, 0.0), cap)
    return sent, blocked

