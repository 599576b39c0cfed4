"""The policy's live keys: bounded tables per rule, and the counters kept across restarts.

These are the policy's mutable state, not values that flow. Every change marks
its ``kv`` key dirty, so :meth:`~logwatch.policy.Policy.save` writes only what changed.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

V = TypeVar("V")


def flat(obj: Any) -> dict[str, Any]:
    """A slotted dataclass of plain values as a dict, without ``asdict``'s deep copies."""
    return {name: getattr(obj, name) for name in obj.__slots__}


@dataclass(slots=True)
class Counters:
    """Totals kept across restarts; ``latest`` keeps event time monotonic."""

    latest: float = 0.0
    hits: Counter[str] = field(default_factory=Counter)
    below: Counter[str] = field(default_factory=Counter)
    evictions: int = 0

    def dump(self) -> dict[str, Any]:
        return {"latest": self.latest, "hits": dict(self.hits), "below": dict(self.below),
                "evictions": self.evictions}

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Counters:
        return cls(float(data.get("latest", 0.0)), Counter(data.get("hits", {})),
                   Counter(data.get("below", {})), int(data.get("evictions", 0)))


class Table(Generic[V]):
    """Live keys of one kind, per rule, least recently touched first, capped per rule.

    Every change marks the row's kv key dirty, so :meth:`Policy.save` writes only that.
    """

    def __init__(self, kind: str, cap: int, dirty: set[str],
                 dump: Callable[[V], Any], load: Callable[[Any], V]) -> None:
        self.kind = kind
        self.cap = cap
        self.dirty = dirty
        self.dump = dump
        self.load = load
        self.rows: dict[str, OrderedDict[str, V]] = {}

    def kv_key(self, rule: str, key: str) -> str:
        return f"{self.kind}/{rule}/{key}"

    def get(self, rule: str, key: str) -> V | None:
        rows = self.rows.get(rule)
        return None if rows is None else rows.get(key)

    def put(self, rule: str, key: str, value: V) -> list[tuple[str, V]]:
        """Add or replace ``key`` as the newest; return the entries evicted to stay capped."""
        rows = self.rows.setdefault(rule, OrderedDict())
        rows[key] = value
        rows.move_to_end(key)
        self.dirty.add(self.kv_key(rule, key))
        evicted = []
        while len(rows) > self.cap:
            old_key, old = rows.popitem(last=False)
            self.dirty.add(self.kv_key(rule, old_key))
            evicted.append((old_key, old))
        return evicted

    def touch(self, rule: str, key: str, *, newest: bool = True) -> None:
        """``key`` changed (and, if ``newest``, was just used)."""
        if newest:
            self.rows[rule].move_to_end(key)
        self.dirty.add(self.kv_key(rule, key))

    def pop(self, rule: str, key: str) -> V | None:
        self.dirty.add(self.kv_key(rule, key))
        rows = self.rows.get(rule)
        return None if rows is None else rows.pop(key, None)

    def due(self, rule: str, is_due: Callable[[V], bool]) -> list[tuple[str, V]]:
        """The oldest entries of ``rule`` for which ``is_due`` holds, up to the first that not."""
        out = []
        for key, value in self.rows.get(rule, {}).items():
            if not is_due(value):
                break
            out.append((key, value))
        return out

    def first(self, rule: str) -> V | None:
        rows = self.rows.get(rule)
        return next(iter(rows.values())) if rows else None

    def value_of(self, rule: str, key: str) -> Any:
        value = self.get(rule, key)
        return None if value is None else self.dump(value)

    def sort(self, key: Callable[[V], float]) -> None:
        for rule, rows in self.rows.items():
            self.rows[rule] = OrderedDict(sorted(rows.items(), key=lambda kv: key(kv[1])))

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.rows.values())

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.rows))
