"""The link to the fleet's Redis: one client, short timeouts, a circuit breaker, a status.

Every fleet feature calls Redis through :meth:`FleetLink.call`. A failure (refused,
timed out, a Redis error) opens the breaker: for ``cooldown`` seconds (doubling up
to ``max_cooldown``) calls fail at once with :class:`FleetUnavailable`, so a dead
or black-holed Redis costs one timeout per cooldown, not one per alert. After the
cooldown one call probes (the others still fail fast); its success closes the
breaker. Each feature decides how to fail open.

``redis`` is imported when the first call connects, never at import time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from logwatch.errors import LogwatchError
from logwatch.fleet.settings import FleetSettings

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

T = TypeVar("T")
COOLDOWN = 1.0
MAX_COOLDOWN = 5.0
#: weight of the newest round trip in the smoothed latency
EWMA = 0.2


class FleetUnavailable(LogwatchError):
    """Redis cannot be used right now (down, slow, or the breaker is open)."""


class FleetLink:
    """A thread-safe Redis client for the fleet features; see the module docstring."""

    def __init__(self, settings: FleetSettings, host: str, *, cooldown: float = COOLDOWN,
                 max_cooldown: float = MAX_COOLDOWN) -> None:
        self.settings = settings
        self.host = host
        self.namespace = settings.namespace
        self.base_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self._cooldown = cooldown
        self._lock = threading.Lock()
        self._client: redis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._open_until = 0.0
        self._probing = False
        #: smoothed round-trip time of successful calls (seconds)
        self.latency: float | None = None
        self.last_error: str | None = None
        #: wall time since when Redis has been unavailable (None: it works)
        self.down_since: float | None = None
        self.calls = 0
        self.failures = 0
        self.fast_failures = 0

    def __repr__(self) -> str:
        return f"FleetLink({self.settings.where!r}, up={self.up})"

    @property
    def up(self) -> bool:
        """The last call worked (or none was made yet)."""
        return self.down_since is None

    # -- calls ---------------------------------------------------------------------------

    def call(self, fn: Callable[[redis.Redis], T]) -> T:
        """``fn(client)``; :class:`FleetUnavailable` if Redis fails or the breaker is open."""
        self._enter()
        start = time.perf_counter()
        try:
            result = fn(self._connect())
        except Exception as exc:
            self._failed(exc)
            raise FleetUnavailable(self.last_error or "unavailable") from None
        self._succeeded(time.perf_counter() - start)
        return result

    def script(self, name: str, lua: str) -> Callable[..., Any]:
        """A registered Lua script (EVALSHA, loaded again after a Redis restart)."""
        def run(keys: list[str], args: list[Any]) -> Any:
            return self.call(lambda client: self._script(client, name, lua)(keys=keys,
                                                                              args=args))
        return run

    def ping(self) -> bool:
        """One round trip (also how a down link notices Redis is back); whether it worked."""
        try:
            self.call(lambda client: client.ping())
        except FleetUnavailable:
            return False
        return True

    def close(self) -> None:
        """Drop the connections."""
        with self._lock:
            client, self._client = self._client, None
            self._scripts.clear()
        if client is not None:
            client.close()

    def status(self) -> dict[str, Any]:
        """For ``logwatch status``: where, connected, latency, last error (nothing secret)."""
        return {
            "url": self.settings.where, "namespace": self.namespace, "connected": self.up,
            "latency_ms": None if self.latency is None else round(self.latency * 1000, 2),
            "down_since": self.down_since, "last_error": self.last_error,
            "calls": self.calls, "failures": self.failures,
        }

    # -- breaker ---------------------------------------------------------------------------

    def _enter(self) -> None:
        with self._lock:
            self.calls += 1
            if self.down_since is None:
                return
            if self._probing or time.monotonic() < self._open_until:
                self.fast_failures += 1
                raise FleetUnavailable(self.last_error or "unavailable")
            self._probing = True  # this call probes; the others fail fast meanwhile

    def _succeeded(self, elapsed: float) -> None:
        with self._lock:
            self.latency = elapsed if self.latency is None else (
                EWMA * elapsed + (1 - EWMA) * self.latency)
            was_down, self.down_since = self.down_since, None
            self._probing = False
            self._cooldown = self.base_cooldown
        if was_down is not None:
            log.warning("fleet: Redis at %s is reachable again after %.0fs; coordinating with "
                        "the fleet", self.settings.where, time.time() - was_down)

    def _failed(self, exc: Exception) -> None:
        reason = self._reason(exc)
        with self._lock:
            self.failures += 1
            was_up = self.down_since is None
            if was_up:
                self.down_since = time.time()
            self.last_error = reason
            self._open_until = time.monotonic() + self._cooldown
            if not was_up:
                self._cooldown = min(self._cooldown * 2, self.max_cooldown)
            self._probing = False
        if was_up:
            log.warning("fleet: Redis at %s unavailable (%s); each host decides alone until it "
                        "is back (duplicates possible, nothing lost)", self.settings.where,
                        reason)

    def _reason(self, exc: Exception) -> str:
        """One line about ``exc``, without the password or a URL that may hold it."""
        text = " ".join(str(exc).split())
        for secret in (self.settings.url, self.settings.password):
            if secret is not None:
                text = secret.redact(text)
        if "://" in text:
            text = ""
        name = type(exc).__name__
        return f"{name}: {text}"[:200] if text else name

    # -- client ------------------------------------------------------------------------------

    def _connect(self) -> redis.Redis:
        with self._lock:
            if self._client is None:
                self._client = self._new_client()
            return self._client

    def _new_client(self) -> redis.Redis:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        timeout = self.settings.timeout
        password = self.settings.password.reveal() if self.settings.password else None
        options: dict[str, Any] = {
            "socket_timeout": timeout, "socket_connect_timeout": timeout,
            # one attempt: the breaker, not the client, decides when to try again
            "retry": Retry(NoBackoff(), 0), "retry_on_timeout": False,
            "health_check_interval": 0, "client_name": f"logwatch:{_client_name(self.host)}",
        }
        if password is not None:
            options["password"] = password
        return redis.Redis.from_url(self.settings.url.reveal(), **options)

    def _script(self, client: redis.Redis, name: str, lua: str) -> Any:
        with self._lock:
            script = self._scripts.get(name)
            if script is None:
                script = self._scripts[name] = client.register_script(lua)
            return script


def _client_name(host: str) -> str:
    # CLIENT SETNAME refuses spaces and newlines
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in host)[:64]
