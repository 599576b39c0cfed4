"""Fixtures for the fleet: a real Redis and links to it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from logwatch.fleet.link import FleetLink
from logwatch.fleet.memory import MemoryStore
from logwatch.fleet.redisstore import RedisStore
from logwatch.fleet.settings import FleetSettings
from logwatch.fleet.store import FleetStore
from logwatch.secret import Secret
from tests.fleet.redisserver import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server for this test (skips when the binary is missing)."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def make_link(redis_server: RedisServer) -> Iterator[Callable[..., FleetLink]]:
    """``make_link("web-1")``: a link to the test's Redis as host web-1 (closed after)."""
    links: list[FleetLink] = []

    def make(host: str = "web-1", **options: object) -> FleetLink:
        settings = FleetSettings(Secret(redis_server.url, "inline"), namespace="test",
                                 timeout=0.5)
        link = FleetLink(settings, host, **options)  # type: ignore[arg-type]
        links.append(link)
        return link

    yield make
    for link in links:
        link.close()


@pytest.fixture(params=["redis", "memory"])
def store(request: pytest.FixtureRequest) -> FleetStore:
    """The fleet's shared state on the test's Redis, or in-process: the same answers."""
    if request.param == "memory":
        return MemoryStore(time.time)
    make: Callable[..., FleetLink] = request.getfixturevalue("make_link")
    return RedisStore(make("store"))
