"""Fleet dedup claims, on a real Redis and in-process: one host sends, the others are counted."""

from __future__ import annotations

from collections.abc import Callable

from logwatch.fleet.claims import KEPT, MAX_TALLY, Tally, claim_name, taken_name
from logwatch.fleet.link import FleetLink
from logwatch.fleet.redisstore import RedisStore
from logwatch.fleet.store import FleetStore
from tests.fleet.hostview import HostView
from tests.helpers import wait_for

NAME = claim_name("dest-identity", "ssh-bruteforce", "203.0.113.7")


def test_the_first_claim_sends_and_the_others_wait_then_count(store: FleetStore) -> None:
    """Pending: the others wait; once sent, they add their hits to the owner's tally."""
    web1, web2, web3 = (HostView(store, h) for h in ("web-1", "web-2", "web-3"))
    assert web1.claim(NAME).verdict == "own"
    waiting = web2.claim(NAME)
    assert waiting.verdict == "wait" and waiting.owner == "web-1" and waiting.ttl > 0
    web1.confirm(NAME)
    assert web2.claim(NAME, 3).verdict == "counted"
    assert web3.claim(NAME, 1).verdict == "counted"
    assert web1.claim(NAME).verdict == "own"  # the owner retrying is still the owner
    answer = web1.summary(NAME, 0)
    assert answer.verdict == "own" and answer.others == (("web-2", 3), ("web-3", 1))
    assert Tally("own", "web-1", answer.others).describe() == \
        "also seen on 2 hosts (web-2, web-3): 4 hits"
    # the claim is closed: a later summary is the host's own, a later alert a new claim
    assert web2.summary(NAME, 2).verdict == "none"
    assert web2.claim(NAME).verdict == "own"


def test_a_host_that_crashed_after_claiming_loses_the_claim_after_its_lease(
        store: FleetStore) -> None:
    """The lease ends, another host takes the claim and sends: nothing is lost."""
    crashed = HostView(store, "web-1", lease=0.2)
    other = HostView(store, "web-2", lease=0.2)
    assert crashed.claim(NAME).verdict == "own"
    wait_for(lambda: other.claim(NAME).verdict == "own", 5.0, message="the lease to end")


def test_a_released_claim_goes_to_the_next_host(store: FleetStore) -> None:
    """The owner's message died (a rejected payload): another host may send its own."""
    web1, web2 = HostView(store, "web-1"), HostView(store, "web-2")
    web1.claim(NAME)
    web1.release(NAME)
    assert web2.claim(NAME).verdict == "own"


def test_summaries_of_other_hosts_count_into_the_owner_tally(store: FleetStore) -> None:
    """A non-owner's dedup summary is folded into the owner's, which names the hosts."""
    hosts = [HostView(store, f"web-{i:02d}") for i in range(1, 14)]
    owner, others = hosts[0], hosts[1:]
    owner.claim(NAME)
    owner.confirm(NAME)
    for h in others:
        assert h.claim(NAME).verdict == "counted"
        counted = h.summary(NAME, 2)
        assert (counted.verdict, counted.owner) == ("counted", "web-01")
    tally = Tally("own", "web-01", owner.summary(NAME, 5).others)
    assert tally.hits == 12 * 3 and len(tally.others) == 12
    assert tally.describe().startswith("also seen on 12 hosts (web-02, ")
    assert tally.describe().endswith(", and 2 more): 36 hits")


def test_nothing_from_the_log_or_the_destination_is_stored(
        make_link: Callable[..., FleetLink]) -> None:
    """Keys are hashes; values are host names and counts."""
    link = make_link("web-1")
    web1, web2 = HostView(RedisStore(link), "web-1"), HostView(RedisStore(link), "web-2")
    web1.claim(NAME)
    web1.confirm(NAME)
    web2.claim(NAME)
    keys = link.call(lambda c: c.keys("*"))
    dump = repr(keys) + repr([link.call(lambda c, k=k: c.dump(k)) for k in keys])
    for secret in ("203.0.113.7", "ssh-bruteforce", "dest-identity"):
        assert secret not in dump


def test_the_same_summary_asking_again_gets_the_tally_it_took(store: FleetStore) -> None:
    """The owner crashed between the store's answer and saving it: its summary asks again
    after the restart (same token) and gets the same tally; nothing else gets it."""
    web1, web2, web3 = (HostView(store, h) for h in ("web-1", "web-2", "web-3"))
    web1.claim(NAME)
    web1.confirm(NAME)
    web2.claim(NAME, 3)
    taken = web1.summary(NAME, 0, "window-1")
    assert taken.verdict == "own" and taken.others == (("web-2", 3),)
    # the claim is closed: a new alert is a new claim, whose owner takes its own tally
    web3.claim(NAME)
    web3.confirm(NAME)
    web2.claim(NAME, 5)
    assert web3.summary(NAME, 0, "window-1").others == (("web-2", 5),)
    again = web1.summary(NAME, 0, "window-1")
    assert (again.verdict, again.others) == ("own", (("web-2", 3),))
    assert web1.summary(NAME, 0, "window-1").others == (("web-2", 3),)  # and again
    # the next window's summary, another host's with the same token, or none: not kept
    assert web1.summary(NAME, 0, "window-2").others == ()
    assert web2.summary(NAME, 0, "window-1").others == ()
    assert web1.summary(NAME, 0).others == ()


def test_a_summary_without_a_token_keeps_nothing(store: FleetStore) -> None:
    """An ask without a token (as a host of the previous version asks) closes the claim as
    before; and a window's summary never gets an earlier window's tally."""
    web1, web2 = HostView(store, "web-1"), HostView(store, "web-2")

    def window(counted: int, token: str) -> tuple[tuple[str, int], ...]:
        web1.claim(NAME)
        web1.confirm(NAME)
        if counted:
            web2.claim(NAME, counted)
        return web1.summary(NAME, 0, token).others

    assert window(2, "") == (("web-2", 2),)
    assert web1.summary(NAME, 0).verdict == "none"
    assert window(3, "window-2") == (("web-2", 3),)
    assert window(0, "window-3") == ()  # nothing counted this time
    assert web1.summary(NAME, 0, "window-3").others == ()
    assert web1.summary(NAME, 0, "window-2").others == (("web-2", 3),)  # each its own


def test_a_taken_tally_is_kept_for_a_bounded_time(make_link: Callable[..., FleetLink]) -> None:
    """On Redis, what a summary took lives at most KEPT (as a hash of names and counts)."""
    link = make_link("web-1")
    web1, web2 = HostView(RedisStore(link), "web-1"), HostView(RedisStore(link), "web-2")
    web1.claim(NAME)
    web1.confirm(NAME)
    web2.claim(NAME, 2)
    web1.summary(NAME, 0, "window-1")
    keys = sorted(k.decode() for k in link.call(lambda c: c.keys("*")))
    taken = taken_name(NAME, "web-1", "window-1")
    assert keys == [f"test:kept:{taken}", f"test:took:{taken}"]
    for k in keys:
        assert 0 < link.call(lambda c, k=k: c.pttl(k)) <= KEPT * 1000


def test_a_tally_names_at_most_max_hosts(store: FleetStore) -> None:
    """Summaries counted into the owner's tally are bounded as alerts are (and so is the
    tally the store keeps for the owner's summary to ask again)."""
    owner = HostView(store, "web-0")
    owner.claim(NAME)
    owner.confirm(NAME)
    for i in range(1, MAX_TALLY + 2):
        assert HostView(store, f"web-{i}").summary(NAME, 1).verdict == "counted"
    taken = owner.summary(NAME, 0, "window-1")
    # web-10001 came after 10,000 others (and would be among the first 10,000 by name)
    assert len(taken.others) == MAX_TALLY and ("web-10001", 1) not in taken.others
    assert owner.summary(NAME, 0, "window-1").others == taken.others
