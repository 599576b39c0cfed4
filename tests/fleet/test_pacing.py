"""Shared pacing, on a real Redis and in-process: one window for every host, a shared block."""

from __future__ import annotations

from collections.abc import Callable

from logwatch.config import DiscordDestination
from logwatch.delivery.destinations.types import Window
from logwatch.fleet.claims import claim_name
from logwatch.fleet.keys import destination_identity
from logwatch.fleet.link import FleetLink
from logwatch.fleet.redisstore import RedisStore
from logwatch.fleet.store import Ask, FleetStore
from logwatch.secret import Secret
from tests.fleet.hostview import HostView, paced

HOOK = paced("hook", Window(5, 2.0))


def test_hosts_share_one_window(store: FleetStore) -> None:
    """Five requests from five hosts fill Discord's window; the sixth host must wait."""
    hosts = [HostView(store, f"web-{i}", HOOK) for i in range(6)]
    slots = [h.acquire() for h in hosts[:5]]
    assert all(wait == 0 and slot for wait, slot in slots)
    wait, slot = hosts[5].acquire()
    assert slot == "" and 1.5 < wait <= 2.0


def test_a_finished_request_moves_its_slot_to_its_end(store: FleetStore) -> None:
    """The slot counts from when the answer came, as the service saw the request no later."""
    host = HostView(store, "web-1", paced("hook", Window(1, 0.5)))
    _, slot = host.acquire()
    host.finish(slot)
    wait, _ = host.acquire()
    assert 0.4 < wait <= 0.5


def test_a_429_on_one_host_blocks_every_host(store: FleetStore) -> None:
    """A pause (429 retry_after or X-RateLimit-Remaining: 0) reaches the whole fleet."""
    web1, web2 = HostView(store, "web-1", HOOK), HostView(store, "web-2", HOOK)
    _, slot = web1.acquire()
    web1.finish(slot, pause=3.0)
    wait, slot = web2.acquire()
    assert slot == "" and 2.5 < wait <= 3.0
    web1.finish("", pause=10**9)  # an absurd value from a reply is clamped (1 h)
    wait, _ = web2.acquire()
    assert wait <= 3600


def test_claims_and_slot_are_one_round_trip_and_a_wait_takes_no_tally(
        store: FleetStore) -> None:
    """``begin`` claims a batch and takes one slot; while pacing waits, a summary keeps its tally."""
    name = claim_name("hook", "ssh", "203.0.113.7")
    owner, other = HostView(store, "web-1", HOOK), HostView(store, "web-2", HOOK)
    begun = store.begin("web-1", HOOK, [Ask("alert", name, 1), Ask("plain")], 30.0)
    assert begun.wait == 0 and begun.slot and [a.verdict for a in begun.answers] == ["own", "send"]
    owner.confirm(name)
    assert other.claim(name, 4).verdict == "counted"  # the window is not touched: no slot
    for _ in range(4):
        owner.acquire()
    held = store.begin("web-1", HOOK, [Ask("summary", name, 0)], 30.0)
    assert held.wait > 0 and held.slot == "" and held.answers[0].others == ()
    assert other.claim(name, 1).verdict == "counted"  # the claim is still open


def test_destinations_are_keyed_by_a_hash_never_the_url(
        make_link: Callable[..., FleetLink]) -> None:
    """No webhook URL (it is the token) reaches Redis."""
    url = "https://discord.com/api/webhooks/1/TOKEN-abcdef"
    identity = destination_identity(DiscordDestination("hook", Secret(url)))
    assert identity is not None and "TOKEN" not in identity
    link = make_link()
    host = HostView(RedisStore(link), "web-1", paced(identity, Window(5, 2.0)))
    _, slot = host.acquire()
    host.finish(slot, pause=1.0)
    keys = link.call(lambda c: c.keys("*"))
    assert keys and not any(b"TOKEN" in k or b"discord" in k for k in keys)
