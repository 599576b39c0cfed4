"""Fleet dedup: the same rule and key on several hosts is one message that counts the hosts.

A claim is taken when a sender is about to send an alert of a rule with ``dedup``
(not when the hit happens), on a key built from the destination's identity, the
rule and the dedup key (hashed); the claim itself is kept by a
:class:`~logwatch.fleet.store.FleetStore` (Redis, or in-process for a replay).
States of the claim (a string):

    p|HOST   HOST is sending (a short lease: if it crashes, the lease ends and
             another host takes the claim and sends)
    s|HOST   HOST sent it; until the dedup window ends, other hosts add their
             hits to the claim's tally (a hash host -> hits) instead of sending

The owner's dedup summary, at the end of its window, takes the tally and closes the
claim: "also seen on 19 hosts (web-02, web-03, ...)". The store keeps what it handed
over for :data:`KEPT`, under the claim, the host and the summary's token (a hash of its
alert id, the same after a restart): if the owner dies before it saved the summary with its
tally, the same summary asking again gets the same tally. A host whose own summary
comes after that sends it (duplicates possible, counted). When Redis is
unavailable every host sends (fail open: nothing is lost, duplicates are counted).
Redis holds the host names and counts only. Taking, confirming and releasing
claims ride on the same round trips as shared pacing (see :mod:`~logwatch.fleet.store`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from logwatch.fleet.keys import digest

#: how long a claim waits for its owner's answer before another host may take it
LEASE = 30.0
#: a claim outlives its dedup window by this much (the owner's summary comes at its end)
GRACE = 120.0
#: hosts named in a summary; the rest is "and N more"
MAX_NAMED = 10
#: a tally handed to the owner's summary is kept this long for the same summary to ask
#: again (its host crashed, or was rebooted, before it saved the summary with the tally)
KEPT = 600.0
MAX_TALLY = 10_000


@dataclass(frozen=True, slots=True)
class Tally:
    """What a dedup summary learns from the fleet."""

    #: ``none``: no claim (never claimed, expired, or Redis was down); ``own``: this host
    #: sent the alert and ``others`` are the hits other hosts counted into it
    verdict: Literal["none", "own", "counted"]
    owner: str = ""
    others: tuple[tuple[str, int], ...] = ()

    @property
    def hits(self) -> int:
        """Hits the other hosts counted."""
        return sum(n for _, n in self.others)

    def describe(self) -> str:
        """``also seen on 3 hosts (web-2, web-3, web-4): 7 hits``."""
        names = [host for host, _ in self.others[:MAX_NAMED]]
        more = len(self.others) - len(names)
        listed = ", ".join(names) + (f", and {more} more" if more else "")
        hosts = "1 host" if len(self.others) == 1 else f"{len(self.others)} hosts"
        hits = "1 hit" if self.hits == 1 else f"{self.hits} hits"
        return f"also seen on {hosts} ({listed}): {hits}"


def claim_name(identity: str, rule: str, key: str) -> str:
    """The hashed name of the claim for ``rule`` and dedup ``key`` at destination ``identity``."""
    return digest(identity, rule, key)


def taken_name(claim: str, host: str, token: str) -> str:
    """The hashed name under which the store keeps the tally it handed to ``host``'s
    summary ``token`` of ``claim`` (one per summary: another host's or window's differs)."""
    return digest(claim, host, token)
