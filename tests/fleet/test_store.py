"""The in-process store answers as the Redis scripts do: the same calls, the same answers.

``logwatch test --alerts --host NAME=FILE`` replays a fleet with
:class:`~logwatch.fleet.memory.MemoryStore`; running hosts use
:class:`~logwatch.fleet.redisstore.RedisStore`. Random sequences of every operation
(claims of alerts and summaries, a summary asking again with its token, confirms,
releases, pacing slots, a shared pause, fleet-threshold hits) go to both, and every
answer must agree.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from logwatch.delivery.destinations.types import Window
from logwatch.fleet.link import FleetLink
from logwatch.fleet.memory import MemoryStore
from logwatch.fleet.redisstore import RedisStore
from logwatch.fleet.store import Answer, Ask, AskKind, Begun, FleetStore, Pace, Settle

HOSTS = ("web-1", "web-2", "web-3", "web-4")
NAMES = ("claim-a", "claim-b", "claim-c")
#: a summary's token: a window's summary asks again (a restart), or the next one asks
TOKENS = ("", "window-1", "window-2")
#: most requests unpaced (so that claims are not all held back); some fill two windows
FREE, PACED = Pace("hook"), Pace("paced-hook", (Window(3, 60.0), Window(5, 600.0)))
T0 = 1_700_000_000.0


def _answer(a: Answer) -> tuple[object, ...]:
    """What must agree (the exact ms left on a lease depends on when each ran)."""
    return a.verdict, a.owner, a.ttl > 0, a.others


def _begun(b: Begun) -> tuple[object, ...]:
    return b.wait > 0, bool(b.slot), tuple(_answer(a) for a in b.answers)


class Twin:
    """Every call goes to both stores; their answers are compared."""

    def __init__(self, redis: FleetStore, memory: FleetStore) -> None:
        self.stores = (redis, memory)
        #: the last slot each store gave each host
        self.slots: list[dict[str, str]] = [{}, {}]

    def begin(self, host: str, pace: Pace, asks: list[Ask]) -> None:
        answers = []
        for i, store in enumerate(self.stores):
            begun = store.begin(host, pace, asks, 30.0)
            self.slots[i][host] = begun.slot
            answers.append(_begun(begun))
        assert answers[0] == answers[1], (host, asks)

    def end(self, host: str, pace: Pace, pause: float, settles: list[Settle]) -> None:
        for i, store in enumerate(self.stores):
            store.end(host, pace, self.slots[i].pop(host, ""), pause, settles)

    def hit(self, host: str, name: str, t: float, need: int) -> None:
        counts = [store.hit(host, name, t, 600.0, need, f"{host}|{t}") for store in self.stores]
        assert counts[0] == counts[1], (host, name, t)


@pytest.mark.parametrize("seed", range(4))
def test_memory_and_redis_agree_on_random_sequences(
        make_link: Callable[..., FleetLink], seed: int) -> None:
    """300 random operations from four hosts: every answer the same."""
    rng = random.Random(seed)
    twin = Twin(RedisStore(make_link("twin")), MemoryStore(time.time))
    t = T0
    for _ in range(300):
        host = rng.choice(HOSTS)
        pace = PACED if rng.random() < 0.2 else FREE
        op = rng.random()
        if op < 0.45:
            kinds: list[AskKind] = ["alert", "summary", "plain"]
            asks = [Ask(k, rng.choice(NAMES), rng.randint(0, 3),
                        rng.choice(TOKENS) if k == "summary" else "")
                    for k in rng.choices(kinds, weights=(5, 3, 1), k=rng.randint(1, 3))]
            twin.begin(host, pace, asks)
            if rng.random() < 0.3:  # the host crashed before it saved what it got: again
                twin.begin(host, FREE, asks)
        elif op < 0.75:
            settles = [Settle(n, rng.random() < 0.8, 60.0)
                       for n in rng.sample(NAMES, rng.randint(0, 2))]
            twin.end(host, pace, 600.0 if rng.random() < 0.02 else 0.0, settles)
        else:
            t += rng.choice((0.0, 1.0, 30.0, 400.0))
            twin.hit(host, rng.choice(NAMES), t, rng.randint(2, 4))
