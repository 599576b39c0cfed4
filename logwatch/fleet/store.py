"""What the fleet shares, as one interface: :class:`FleetStore`.

Two implementations do exactly the same thing: :class:`~logwatch.fleet.redisstore.RedisStore`
(Lua scripts on the fleet's Redis, one round trip per call) for running hosts, and
:class:`~logwatch.fleet.memory.MemoryStore` (in-process) for ``logwatch test --alerts
--host NAME=FILE``, which replays several hosts' logs as one fleet without Redis.
A test runs the same calls against both and compares the answers.

Three operations, each atomic:

``hit``
    fleet thresholds: add this host (with the hit's time) to the key's hosts, drop
    hosts not seen within ``within``, count, and at ``need`` hosts set a "fired"
    mark (for ``within``) naming this host and line: exactly one host fires.
    A replay of the same line on the same host fires again (same alert id).

``begin`` (before a request: the first of a send's two round trips)
    the pacing wait of the destination (its windows, shared by every host, and a
    fleet-wide block after a 429), then the claims of the batch, in order, stopping
    at the first one another host is sending (``wait``); then, if something is to be
    sent and pacing allows, a slot in every window. Claim states (one string per
    claim, see :mod:`~logwatch.fleet.claims`)::

        p|HOST   HOST is sending it (a lease: if HOST crashes, it ends)
        s|HOST   HOST sent it; other hosts count their hits into its tally

    An alert's claim answers ``own`` (send it), ``wait`` or ``counted`` (another host
    sent it: our hits went into its tally). A dedup summary's claim answers
    ``own`` with the tally (closing the claim; only when pacing lets it go now),
    ``counted`` (folded into the owner's) or ``none`` (no claim). The tally handed
    over is kept for :data:`~logwatch.fleet.claims.KEPT` under the claim, the host and
    the summary's ``token``: the same summary asking again (its owner restarted before it
    saved what it took) gets the same tally; another token (the next window's
    summary) or another host does not.

``end`` (after the answer: the second round trip)
    move the slot to the time the answer came, share a pause (429 or an empty
    rate-limit bucket) with every host, and confirm (hold for the dedup window) or
    release (another host may send) the claims this host owned in the request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from logwatch.delivery.destinations.types import Window

#: no service asks for a longer pause; a bigger value from a reply is clamped
MAX_PAUSE = 3600.0

AskKind = Literal["plain", "alert", "summary"]
Verdict = Literal["send", "own", "wait", "counted", "none"]


@dataclass(frozen=True, slots=True)
class Ask:
    """One row of a batch: ``plain`` (no claim), or the claim ``name`` of an alert or summary."""

    kind: AskKind
    name: str = ""
    #: hits the row carries (counted into the owner's tally when another host sent it)
    hits: int = 0
    #: a summary's replay-stable token (the same after a restart; "": none, no tally kept)
    token: str = ""


@dataclass(frozen=True, slots=True)
class Answer:
    """What ``begin`` found for one :class:`Ask`."""

    verdict: Verdict
    owner: str = ""
    #: seconds the claim still lasts (for ``wait``: when the owner's lease ends)
    ttl: float = 0.0
    #: the owner's summary: the other hosts' hits, most first
    others: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Begun:
    """``begin``'s answer: the pacing wait (0: a slot was taken if something is sent)."""

    wait: float
    slot: str
    #: one per ask, up to and including the first ``wait``
    answers: tuple[Answer, ...]


@dataclass(frozen=True, slots=True)
class Pace:
    """A destination as the fleet shares it: a hash of its URL or token, and its windows."""

    identity: str
    windows: tuple[Window, ...] = ()


@dataclass(frozen=True, slots=True)
class Settle:
    """After a request: confirm the claim ``name`` for ``hold`` seconds, or release it."""

    name: str
    confirmed: bool
    hold: float = 0.0


@dataclass(frozen=True, slots=True)
class FleetCount:
    """The fleet's answer for one hit: fired (this host queues the alert) and who saw it."""

    fired: bool
    hosts: int
    names: tuple[str, ...] = ()


class FleetStore(Protocol):
    """The fleet's shared state; every call may raise ``FleetUnavailable`` (fail open)."""

    @property
    def where(self) -> str:
        """Where the store is, for messages (no credentials)."""

    @property
    def down_since(self) -> float | None:
        """Wall time since when the store has been unavailable (None: it works)."""

    def hit(self, host: str, name: str, t: float, within: float, need: int,
            marker: str) -> FleetCount:
        """Count ``host`` for the fleet-threshold key ``name`` at event time ``t``."""

    def begin(self, host: str, pace: Pace, asks: Sequence[Ask], lease: float) -> Begun:
        """Pacing wait, claims in order, and a slot if something is to be sent now."""

    def end(self, host: str, pace: Pace, slot: str, pause: float,
            settles: Sequence[Settle]) -> None:
        """The request ended: move ``slot``, share ``pause``, confirm or release claims."""


def clamp_pause(pause: float) -> int:
    """``pause`` seconds as milliseconds within ``[0, MAX_PAUSE]``."""
    return int(min(max(pause, 0.0), MAX_PAUSE) * 1000)


def sort_tally(pairs: list[tuple[str, int]], limit: int) -> tuple[tuple[str, int], ...]:
    """The tally's hosts, most hits first (then by name), at most ``limit``."""
    pairs.sort(key=lambda p: (-p[1], p[0]))
    return tuple(pairs[:limit])
