"""Shared pacing against a real Redis: one window for every host, and a shared block."""

from __future__ import annotations

from collections.abc import Callable

from logwatch.config import DiscordDestination
from logwatch.delivery.destinations.types import Window
from logwatch.fleet.keys import destination_identity
from logwatch.fleet.link import FleetLink
from logwatch.fleet.pacing import SharedPacer
from logwatch.secret import Secret

WINDOWS = (Window(5, 2.0),)


def test_hosts_share_one_window(make_link: Callable[..., FleetLink]) -> None:
    """Five requests from five hosts fill Discord's window; the sixth host must wait."""
    pacers = [SharedPacer(make_link(f"web-{i}"), "hook", WINDOWS) for i in range(6)]
    slots = [p.acquire() for p in pacers[:5]]
    assert all(wait == 0 and slot for wait, slot in slots)
    wait, slot = pacers[5].acquire()
    assert slot == "" and 1.5 < wait <= 2.0


def test_a_finished_request_moves_its_slot_to_its_end(make_link: Callable[..., FleetLink]) -> None:
    """The slot counts from when the answer came, as the service saw the request no later."""
    pacer = SharedPacer(make_link(), "hook", (Window(1, 0.5),))
    _, slot = pacer.acquire()
    pacer.finish(slot)
    wait, _ = pacer.acquire()
    assert 0.4 < wait <= 0.5


def test_a_429_on_one_host_blocks_every_host(make_link: Callable[..., FleetLink]) -> None:
    """A pause (429 retry_after or X-RateLimit-Remaining: 0) reaches the whole fleet."""
    web1 = SharedPacer(make_link("web-1"), "hook", WINDOWS)
    web2 = SharedPacer(make_link("web-2"), "hook", WINDOWS)
    _, slot = web1.acquire()
    web1.finish(slot, pause=3.0)
    wait, slot = web2.acquire()
    assert slot == "" and 2.5 < wait <= 3.0
    web1.finish("", pause=10**9)  # an absurd value from a reply is clamped (1 h)
    wait, _ = web2.acquire()
    assert wait <= 3600


def test_destinations_are_keyed_by_a_hash_never_the_url(
        make_link: Callable[..., FleetLink]) -> None:
    """No webhook URL (it is the token) reaches Redis."""
    url = "https://discord.com/api/webhooks/1/TOKEN-abcdef"
    identity = destination_identity(DiscordDestination("hook", Secret(url)))
    assert identity is not None and "TOKEN" not in identity
    link = make_link()
    pacer = SharedPacer(link, identity, WINDOWS)
    _, slot = pacer.acquire()
    pacer.finish(slot, pause=1.0)
    keys = link.call(lambda c: c.keys("*"))
    assert keys and not any(b"TOKEN" in k or b"discord" in k for k in keys)
