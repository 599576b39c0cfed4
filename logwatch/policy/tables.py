"""The policy's live keys: bounded tables per rule, and the counters kept across restarts.

These are the policy's mutable state, not values that flow. Every change marks
its ``kv`` key dirty, so :meth:`~logwatch.policy.Policy.save` writes only what changed.
"""

from __future__ import annotations

import json
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from logwatch import state

V = TypeVar("V")
R = TypeVar("R")
#: what a lookup in a rule's rows finds when the rule has none (never written to)
_NONE: dict[str, Any] = {}


#: a saved row's text (compact JSON, ASCII): :func:`logwatch.state.encode`
encode = state.encode
#: a string as :func:`encode` writes it (the C function its encoder calls, ASCII)
_ascii: Callable[[str], str] = json.encoder.encode_basestring_ascii


def number(value: float) -> str:
    """:func:`encode` of a number, for less: ``repr`` writes a finite one the same way."""
    text = repr(value)
    return text if text[-1].isdigit() else encode(value)  # inf, nan: JSON's extensions


def text(value: Any) -> str:
    """:func:`encode` of a string, by the encoder's own C escaper without the encoder (any
    other value, as a damaged saved row may hold, by :func:`encode`)."""
    return _ascii(value) if type(value) is str else encode(value)


def opened_by(opener: str, title: str, source: str) -> str:
    """:func:`encode` of a dedup window's or an incident's first fields as a dict, without
    its closing brace, for more keys to follow: the part of a row that never changes."""
    return f'{{"opener":{text(opener)},"title":{text(title)},"source":{text(source)}'


def typed(row: R, texts: Iterable[str], numbers: Iterable[str]) -> R:
    """``row`` (just loaded) if its ``texts`` fields are text and its ``numbers`` numbers;
    TypeError otherwise: a damaged saved row, which the loader drops (a null where text
    belongs would fail later, in an alert)."""
    for name in texts:
        if type(getattr(row, name)) is not str:
            raise TypeError(f"{name} is not text")
    for name in numbers:
        if type(getattr(row, name)) not in (int, float):
            raise TypeError(f"{name} is not a number")
    return row


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
    A row's kv key is ``KIND/BIRTH/rule/key``: its kind in capitals, then a number
    given when the row was created, in fixed-width hex. The kv table is a B-tree in
    key order, so rows are stored in the order they were born: the rows a
    transaction changes (windows opened or hit lately, ended ones) sit on a few pages
    at the tree's end, where keys such as addresses would scatter them over every page,
    each one a page the commit writes (issue 17: half the cost of a busy commit).
    Rows saved as ``kind/rule/key`` by earlier versions are loaded and rewritten this way.
    """

    def __init__(self, kind: str, cap: int, text: Callable[[V], str],
                 load: Callable[[Any], V]) -> None:
        self.kind = kind
        #: the first part of its rows' kv keys
        self.kv_kind = kind.upper()
        self.cap = cap
        #: the rows changed since the last :meth:`saved_texts`: kv key -> the live value, or
        #: ``None`` for a row to delete (a save finds what to write without looking it up)
        self.changed: dict[str, V | None] = {}
        #: the kv keys born since the last :meth:`saved_texts`: never written, so a row
        #: dropped before the next save costs no DELETE
        self._unsaved: set[str] = set()
        #: a row's saved text (what :func:`encode` writes of its saved form)
        self.text = text
        self.load = load
        self.rows: dict[str, OrderedDict[str, V]] = {}
        #: per rule: each live row's kv key
        self._kv: dict[str, dict[str, str]] = {}
        self._births = 0

    def get(self, rule: str, key: str) -> V | None:
        rows = self.rows.get(rule)
        return None if rows is None else rows.get(key)

    def put(self, rule: str, key: str, value: V) -> list[tuple[str, V]]:
        """Add or replace ``key`` as the newest; return the entries evicted to stay capped."""
        kv_key = self._kv.get(rule, _NONE).get(key)
        if kv_key is None:
            return self.add(rule, key, value)
        rows = self.rows[rule]
        rows.move_to_end(key)
        rows[key] = value
        self.changed[kv_key] = value
        return []

    def add(self, rule: str, key: str, value: V) -> list[tuple[str, V]]:
        """:meth:`put` of a key that is not live (the caller has just looked): most keys are
        seen once, and their first hit costs the row, its kv key and its change, no more."""
        rows = self.rows.get(rule)
        if rows is None:
            rows = self.rows[rule] = OrderedDict()
        rows[key] = value
        self.changed[self._born(rule, key)] = value
        if len(rows) <= self.cap:
            return []
        evicted = []
        while len(rows) > self.cap:
            old_key, old = rows.popitem(last=False)
            self._forget(rule, old_key)
            evicted.append((old_key, old))
        return evicted

    def use(self, rule: str, key: str, *, newest: bool = True) -> V | None:
        """:meth:`get`, for a value about to change: its row is marked dirty (and, if
        ``newest``, it becomes the most recently used)."""
        rows = self.rows.get(rule)
        if rows is None or (value := rows.get(key)) is None:
            return None
        if newest:
            rows.move_to_end(key)
        self.changed[self._kv[rule][key]] = value
        return value

    def pop(self, rule: str, key: str) -> V | None:
        self._forget(rule, key)
        rows = self.rows.get(rule)
        return None if rows is None else rows.pop(key, None)

    def saved_texts(self) -> list[tuple[str, str | None]]:
        """What to store under each changed kv key (``None``: delete it)."""
        text = self.text
        self._unsaved.clear()
        return [(kv_key, None if value is None else text(value))
                for kv_key, value in self.changed.items()]

    def saved_text(self, kv_key: str) -> str | None:
        """What to store under one of this table's dirty kv keys (``None``: delete it)."""
        parts = kv_key.split("/", 3)
        if len(parts) != 4 or self._kv.get(parts[2], _NONE).get(parts[3]) != kv_key:
            return None  # gone, or born again under another kv key
        return self.text(self.rows[parts[2]][parts[3]])

    def restore(self, kv_key: str, saved: Any) -> None:
        """Load a saved row: ``KIND/BIRTH/rule/key``, or the old ``kind/rule/key``, which is
        given a birth and marked to be rewritten (the caller deletes the old one)."""
        kind, _, rest = kv_key.partition("/")
        if kind == self.kind:
            rule, _, key = rest.partition("/")
            value = self.rows.setdefault(rule, OrderedDict())[key] = self.load(saved)
            self.changed[self._born(rule, key)] = value
            return
        birth, rule, key = rest.split("/", 2)
        self.rows.setdefault(rule, OrderedDict())[key] = self.load(saved)
        self._bind(rule, key, kv_key)
        self._births = max(self._births, int(birth, 16))

    def _born(self, rule: str, key: str) -> str:
        self._births += 1
        kv_key = f"{self.kv_kind}/{self._births:012x}/{rule}/{key}"
        # _bind, written out: a row is born per first hit of a key
        if (kv := self._kv.get(rule)) is None:
            kv = self._kv[rule] = {}
        kv[key] = kv_key
        self._unsaved.add(kv_key)
        return kv_key

    def _bind(self, rule: str, key: str, kv_key: str) -> None:
        kv = self._kv.get(rule)
        if kv is None:
            kv = self._kv[rule] = {}
        kv[key] = kv_key

    def _forget(self, rule: str, key: str) -> None:
        """``key`` is no longer live: its saved row is deleted at the next save (a row born
        since the last one was never saved: nothing to delete)."""
        kv_key = self._kv.get(rule, _NONE).pop(key, None)
        if kv_key is None:
            return
        if kv_key in self._unsaved:
            self._unsaved.discard(kv_key)
            self.changed.pop(kv_key, None)
        else:
            self.changed[kv_key] = None

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

    def sort(self, key: Callable[[V], float]) -> None:
        for rule, rows in self.rows.items():
            self.rows[rule] = OrderedDict(sorted(rows.items(), key=lambda kv: key(kv[1])))

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.rows.values())

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.rows))
