"""Thresholds (``threshold = { count, within, by }``): N hits with one key within T.

Hits wait in a sliding window per key; ``count`` of them within ``within`` seconds
fire one alert whose ``count`` is the number of hits it stands for. Hits that leave
the window without firing are counted as *below threshold*, so none is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from logwatch.policy.tables import Table, number
from logwatch.rules import Rule, Threshold

#: ``below(rule_id, hits)``: hits that left a window without firing
Below = Callable[[str, int], None]
#: ``evicted(kind, rule_id)``: a live key was dropped to stay under the cap
Evicted = Callable[[str, str], None]


class Thresholds:
    """The open threshold windows of every rule: hit times per key, oldest first.

    A window is a plain list (at most ``count`` times): most keys are seen once and their
    window never fires, and a list of one time is a tenth of an empty ``deque``'s memory
    (64 bytes against 760), thousands of them live at once.
    """

    def __init__(self, table: Table[list[float]], below: Below, evicted: Evicted) -> None:
        self.table = table
        self._below = below
        self._evicted = evicted

    def add(self, rule_id: str, th: Threshold, key: str, t: float) -> tuple[int, float] | None:
        """``(hits, first hit time)`` if this hit at ``t`` completes the threshold, else None."""
        # the newest, marked dirty (most keys are new: looked up without a call)
        table = self.table
        window = table.use(rule_id, key) if key in table.rows.get(rule_id, ()) else None
        if window is None:
            window = [t]
            for _, old in table.add(rule_id, key, window):  # the newest, marked dirty
                self._evicted("threshold", rule_id)
                self._below(rule_id, len(old))
        else:
            # inclusive: hits exactly `within` apart are within it
            start, end = 0, t - th.within
            while start < len(window) and window[start] < end:
                start += 1
            if start:
                del window[:start]
                self._below(rule_id, start)
            window.append(t)
        if len(window) < th.count:
            return None
        table.pop(rule_id, key)  # these hits are now in the alert's count
        return len(window), window[0]

    def expire(self, rules: Mapping[str, Rule], now: float) -> None:
        """Close the windows whose last hit is older than their rule's ``within``."""
        for rule_id in self.table:
            rule = rules.get(rule_id)
            within = rule.threshold.within if rule is not None and rule.threshold else 0.0
            for key, window in self.table.due(rule_id, _window_over(within, now)):
                self.table.pop(rule_id, key)
                self._below(rule_id, len(window))

    @property
    def pending_hits(self) -> int:
        """Hits still waiting in windows (not yet alerted nor below threshold)."""
        return sum(len(w) for rows in self.table.rows.values() for w in rows.values())


def _window_over(within: float, now: float) -> Callable[[list[float]], bool]:
    # strict, as in Thresholds.add: a hit exactly `within` ago still counts
    return lambda window: window[-1] < now - within


def window_text(window: list[float]) -> str:
    """A threshold window's saved row: its hit times, as ``encode`` writes a list of
    numbers (most windows hold one: written without the join)."""
    if len(window) == 1:
        return f"[{number(window[0])}]"
    return f"[{','.join(map(number, window))}]"


def window_of(saved: list[float]) -> list[float]:
    """A threshold window from its saved row (TypeError if it is not a list of numbers, or
    is empty: a window holds its hits, never none, and its timer reads its last one)."""
    if type(saved) is not list or not saved or any(type(t) not in (int, float) for t in saved):
        raise TypeError("a threshold window is a list of times")
    return saved
