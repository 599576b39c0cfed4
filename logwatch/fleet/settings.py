"""The ``[fleet]`` table, validated (parsed in :mod:`logwatch.config`)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from logwatch.secret import Secret

DEFAULT_NAMESPACE = "logwatch"
#: one Redis round trip on a LAN; a slower answer counts as "Redis is down"
DEFAULT_TIMEOUT = 0.2
SCHEMES = ("redis", "rediss", "unix")


@dataclass(frozen=True, slots=True)
class FleetSettings:
    """Where the fleet's Redis is and how long to wait for it."""

    #: the URL may carry a password (``redis://:pw@host``): kept as a secret
    url: Secret
    password: Secret | None = None
    namespace: str = DEFAULT_NAMESPACE
    timeout: float = DEFAULT_TIMEOUT

    @property
    def where(self) -> str:
        """The URL without credentials, for logs and ``status``: ``redis://10.0.0.5:6379/0``."""
        return describe_url(self.url.reveal())


def describe_url(url: str) -> str:
    """``url`` with any user and password removed."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def check_url(url: str) -> str:
    """``url`` if it is a Redis URL we can use, else ``ValueError`` (without the password)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError("not a valid URL") from None
    if parts.scheme not in SCHEMES:
        raise ValueError(f"expected redis://, rediss:// or unix://, got {parts.scheme or 'no'}"
                         " scheme")
    if parts.scheme == "unix" and not parts.path:
        raise ValueError("unix:// needs a socket path (unix:///run/redis/redis.sock)")
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError(f"{parts.scheme}:// needs a host")
    return url


def check_namespace(value: object) -> str:
    """A namespace is a short plain word: it prefixes every key."""
    if not isinstance(value, str) or not value or len(value) > 64 or not all(
            c.isalnum() or c in "-_." for c in value):
        raise ValueError(f"use 1-64 letters, digits, '-', '_' or '.', got {value!r}")
    return value
