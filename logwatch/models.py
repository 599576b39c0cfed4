"""The values that flow through the pipeline: sources -> matcher -> policy -> outbox.

    Chunk   --matcher-->   Hit   --policy-->   Alert

All are frozen: a stage never changes what an earlier stage produced.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

from logwatch.state import one_shot_encoder

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")

#: What an alert is: a rule firing, the accounting of what dedup held back, a storm
#: digest, a follow-up that a condition ended, or logwatch speaking about itself.
AlertKind = Literal["alert", "summary", "digest", "resolved", "system"]


@dataclass(frozen=True, slots=True)
class Chunk:
    """Whole lines read from one stream, as bytes, each ending in ``b"\\n"``.

    ``stream`` names the stream for good (a file's device, inode, fingerprint and
    truncation generation, or ``journal``); ``offset`` is where ``data`` starts in it.
    A line's key, ``stream@offset``, is the same when the same bytes are read again
    after a crash, which is what makes alert ids replay-stable.
    """

    source: str
    origin: str
    data: bytes
    stream: str
    offset: int = 0
    #: journal only: start of a line in ``data`` -> the entry's cursor and time
    cursors: Mapping[int, str] | None = None
    times: Mapping[int, float] | None = None

    def line_key(self, start: int) -> str:
        """The replay-stable key of the line that starts at ``start`` in ``data``."""
        if self.cursors is not None and start in self.cursors:
            return f"{self.stream}:{self.cursors[start]}"
        return f"{self.stream}@{self.offset + start}"

    def line_time(self, start: int) -> float | None:
        """When the line was logged, if the source knows it (the journal does)."""
        return self.times.get(start) if self.times is not None else None


class LogLine(NamedTuple):
    """One line of a log, with where it came from.

    A named tuple rather than a frozen dataclass: one is made per hit, and a
    frozen dataclass's ``__init__`` costs several times more (a backlog catch-up
    makes tens of thousands per second).
    """

    text: str
    source: str
    origin: str
    key: str
    time: float | None = None


class Hit(NamedTuple):
    """A rule matched a line; ``fields`` are its named groups (unset groups are ``""``).

    A named tuple for the same reason as :class:`LogLine`.
    """

    rule: str
    fields: Mapping[str, str]
    line: LogLine
    #: "resolve" when the line matched the rule's ``resolve`` pattern instead
    kind: Literal["match", "resolve"] = "match"


#: an alert's ``fields`` when it has none (read-only: every such alert shares it)
NO_FIELDS: Mapping[str, str] = MappingProxyType({})


class Alert(NamedTuple):
    """A message to send: what the policy decided, rendered, ready for the outbox.

    A named tuple rather than a frozen dataclass, as :class:`LogLine` and :class:`Hit`:
    the policy makes one per fired alert, and a frozen dataclass's ``__init__`` (a
    ``object.__setattr__`` per field) cost about 4 us more in the daemon. Immutable, equal
    by value, not hashable (``fields`` is a dict); ``alert._replace(to=...)`` for a copy.
    """

    id: str
    kind: AlertKind
    rule: str
    severity: Severity
    title: str
    message: str
    source: str
    host: str
    time: float
    line: str = ""
    fields: Mapping[str, str] = NO_FIELDS
    #: hits the alert stands for (shadows ``tuple.count``, which an alert never uses)
    count: int = 1  # type: ignore[assignment]
    to: tuple[str, ...] = ()

    def to_json(self) -> str:
        """The outbox form of the alert: its fields, in their order, as an object.

        What the one C encoder writes of them as a dict (``json.dumps`` with compact
        separators, text not escaped to ASCII), put together here: building the dict and
        the encoder's dispatch per value cost more than escaping the strings.
        """
        texts = (self.id, self.kind, self.rule, self.severity, self.title, self.message,
                 self.source, self.host, self.line)
        try:  # the C escaper over the texts, without a Python call per text
            id_, kind, rule, severity, title, message, source, host, line = map(
                _basestring, texts)
        except TypeError:  # not text (a damaged saved row): as the encoder writes it
            id_, kind, rule, severity, title, message, source, host, line = map(_text, texts)
        return (f'{{"id":{id_},"kind":{kind},"rule":{rule},"severity":{severity},'
                f'"title":{title},"message":{message},"source":{source},"host":{host},'
                f'"time":{_number(self.time)},"line":{line},'
                f'"fields":{_fields_text(self.fields)},"count":{_number(self.count)},'
                f'"to":{_to_text(self.to)}}}')

    @classmethod
    def from_json(cls, text: str) -> Alert:
        """Read back what :meth:`to_json` wrote."""
        data: dict[str, Any] = json.loads(text)
        data["to"] = tuple(data.get("to", ()))
        if tuple(data) == cls._fields:  # every field in its order, as to_json writes them
            return cls._make(data.values())
        return cls(**data)


#: ``json.dumps`` with options builds an encoder per call; an alert is a plain tree
_ALERT_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_encode = one_shot_encoder(_ALERT_ENCODER)
#: a string as that encoder writes it (the same C function it calls)
_basestring: Callable[[str], str] = json.encoder.encode_basestring


def _text(value: object) -> str:
    """A text field as the encoder writes it (anything else, as from a damaged saved row,
    as the encoder writes that: ``null`` for None)."""
    return _basestring(value) if type(value) is str else _encode(value)


def _fields_text(fields: Mapping[str, str]) -> str:
    """``fields`` as the encoder writes them as a dict (a fired alert's own dict, as is)."""
    return _encode(fields if type(fields) is dict else dict(fields))


#: the encoded ``to`` of recent alerts (a rule's destinations: a few tuples in all)
_TO: dict[tuple[str, ...], str] = {}
#: at most this many (a stray tuple per alert cannot grow it)
_TO_MOST = 64


def _to_text(to: tuple[str, ...]) -> str:
    """``to`` as the encoder writes it; a tuple of names is kept (only such tuples: ``(1,)``
    equals ``(True,)`` but is written otherwise)."""
    if type(to) is tuple and (text := _TO.get(to)) is not None:
        return text
    text = _encode(to)
    if type(to) is tuple and all(type(name) is str for name in to):
        if len(_TO) >= _TO_MOST:
            _TO.clear()
        _TO[to] = text
    return text


def _number(value: float) -> str:
    """A number as the encoder writes it: ``repr`` for an int or a finite float (what the
    encoder calls too), the encoder itself for the others (``NaN``, ``Infinity``)."""
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return repr(value)
    return _encode(value)


def alert_id(*parts: str) -> str:
    """A stable id from the things that make an alert unique (rule, line key, ...)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"), digest_size=12)
    return digest.hexdigest()


#: a journal cursor's seqnum (``i=``, hex; journald writes it lowercase, without zeros ahead)
_SEQNUM = re.compile(r"[:;]i=0*([0-9a-f]{1,16})(?=[;#]|$)")
#: the digit that tells how many hex digits follow it (1 to 16)
_WIDTH = "0123456789abcdef"


def line_order(key: str) -> str:
    """A short ASCII prefix that sorts as the line of ``key`` comes in its stream ("" if unknown).

    A file line's offset (``stream@offset``), or a journal entry's seqnum (``i=`` in its
    cursor), in hex after one hex digit that tells how many digits follow: so ``"00"`` (0)
    < ``"0f"`` (15) < ``"110"`` (16), and the prefix ends where it says (at most 17 characters).
    """
    _, at, offset = key.rpartition("@")
    if at and len(offset) <= 19 and offset.isascii() and offset.isdigit():  # < 2**64
        digits = f"{int(offset):x}"
    elif (seqnum := _SEQNUM.search(key)) is not None:
        digits = seqnum[1].lstrip("0") or "0"
    else:
        return ""
    return _WIDTH[len(digits) - 1] + digits


#: per ``(kind, rule)``: a hash that has taken ``"kind\x1frule\x1f"`` (what :func:`alert_id`
#: of a line alert's parts hashes first), copied for each of the rule's alerts
_SEEDED: dict[tuple[str, str], Any] = {}
#: at most this many (rules and kinds come from the configuration: a few dozen)
_SEEDED_MOST = 1024


def line_alert_id(kind: str, rule: str, key: str) -> str:
    """The id of an alert that rule ``rule`` fired on the line of ``key``: its
    :func:`line_order`, then :func:`alert_id` of all three, whole.

    Replay-stable as the key is, and unique as the hash is (the prefix is made from the
    key, which the hash covers, and says its own length); ordered, so that a stream's
    alerts go next to each other in the outbox's unique index, not each to a page of its own.
    The hash of the rule's part is taken once and copied: a fired alert then hashes its
    line's key alone, without joining and encoding the three parts (the same digest).
    """
    seeded = _SEEDED.get((kind, rule))
    if seeded is None:
        if len(_SEEDED) >= _SEEDED_MOST:
            _SEEDED.clear()
        seeded = _SEEDED[kind, rule] = hashlib.blake2b(
            f"{kind}\x1f{rule}\x1f".encode("utf-8", "surrogatepass"), digest_size=12)
    digest = seeded.copy()
    digest.update(key.encode("utf-8", "surrogatepass"))
    return line_order(key) + digest.hexdigest()
