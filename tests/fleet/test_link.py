"""The link to Redis: round trips, the circuit breaker, reconnecting, secrets kept out."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from logwatch.fleet.link import FleetLink, FleetUnavailable
from logwatch.fleet.settings import FleetSettings
from logwatch.secret import Secret
from tests.fleet.redisserver import RedisServer
from tests.helpers import wait_for


def test_a_call_reaches_redis_and_the_status_shows_the_latency(
        make_link: Callable[..., FleetLink]) -> None:
    """A working link answers, measures its round trip and says it is connected."""
    link = make_link()
    assert link.call(lambda c: c.ping()) is True
    status = link.status()
    assert status["connected"] is True
    assert status["latency_ms"] is not None and status["latency_ms"] >= 0
    assert status["last_error"] is None


def test_a_dead_redis_costs_one_attempt_then_calls_fail_fast(
        make_link: Callable[..., FleetLink], redis_server: RedisServer) -> None:
    """After one failure the breaker is open: the next calls do not touch the network."""
    link = make_link(cooldown=60.0)
    assert link.ping()
    redis_server.kill()
    with pytest.raises(FleetUnavailable):
        link.call(lambda c: c.ping())
    for _ in range(100):
        with pytest.raises(FleetUnavailable):
            link.call(lambda c: c.ping())
    assert link.failures == 1
    assert link.fast_failures == 100
    status = link.status()
    assert status["connected"] is False and status["down_since"] is not None
    assert "Connection" in (status["last_error"] or "")


def test_the_link_reconnects_by_itself_when_redis_comes_back(
        make_link: Callable[..., FleetLink], redis_server: RedisServer) -> None:
    """A restarted Redis (same address) is used again after the cooldown, scripts reloaded."""
    link = make_link(cooldown=0.05, max_cooldown=0.2)
    echo = link.script("echo", "return ARGV[1]")
    assert echo([], ["a"]) == b"a"
    redis_server.kill()
    assert not link.ping()
    redis_server.start()  # empty: the script cache is gone too
    wait_for(link.ping, 10.0, message="the link to come back")
    assert link.up and link.status()["last_error"] is not None  # the past error stays visible
    assert echo([], ["b"]) == b"b"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung or black-holed Redis)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def test_a_silent_redis_times_out_within_the_timeout(silent_port: int) -> None:
    """A Redis that never answers is "down" after ``timeout``, once per cooldown."""
    settings = FleetSettings(Secret(f"redis://127.0.0.1:{silent_port}/0"), timeout=0.1)
    link = FleetLink(settings, "web-1", cooldown=60.0)
    try:
        for _ in range(20):
            with pytest.raises(FleetUnavailable):
                link.call(lambda c: c.ping())
        assert link.failures == 1 and link.fast_failures == 19
        assert "Timeout" in (link.last_error or "")
    finally:
        link.close()


def test_the_password_comes_from_the_settings_and_never_shows(tmp_path: Path) -> None:
    """A Redis with requirepass: the right password works, a wrong one fails without echo."""
    password = "s3cret-Redis-pAss-9f8e7d"  # noqa: S105 - test credential
    server = RedisServer(tmp_path / "redis", password=password).start()
    try:
        good = FleetLink(FleetSettings(Secret(server.url), Secret(password, "file")), "w")
        assert good.ping()
        wrong = "wrong-pass-1234567890"
        bad = FleetLink(FleetSettings(Secret(f"redis://:{wrong}@127.0.0.1:{server.port}/0"),
                                      None), "w")
        assert not bad.ping()
        for link in (good, bad):
            shown = f"{link!r} {link.status()} {link.last_error}"
            assert password not in shown and wrong not in shown
        assert "Auth" in (bad.last_error or "") or "auth" in (bad.last_error or "")
        good.close()
        bad.close()
    finally:
        server.stop()
