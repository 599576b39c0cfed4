"""One sender's HTTP client: a JSON POST to one URL, again and again, as cheaply as it can be.

httpx's client builds a :class:`httpx.Request`, merges headers, runs the connection pool's
bookkeeping and httpcore's trace hooks, then h11's state machine, for every request; for a
sender that posts a few times a second to one URL that cost more CPU than everything else it
does. So, with no proxy in the environment, :class:`Http` goes one layer down httpx's own
stack: one connection opened by httpcore's network backend (TCP, TLS with httpx's SSL
context), kept alive as httpx keeps it (closed after :data:`KEEPALIVE_EXPIRY` s idle, or when
the server closed it), and h11 speaking HTTP/1.1 on it with the request line and headers
prepared once per URL. Errors are httpx's exceptions, as the client raises them. With a proxy,
or a transport given (tests), a POST goes through an :class:`httpx.Client` as before.
"""

from __future__ import annotations

import ssl
import time
import urllib.request
from types import TracebackType
from typing import Final

import h11
import httpcore
import httpx

from logwatch import __version__

HTTP_TIMEOUT: Final = 10.0
#: seconds an idle connection is kept (httpx's default): a server closes idle ones sooner or
#: later, and a request written just as it does is lost without an answer
KEEPALIVE_EXPIRY: Final = 5.0
READ_SIZE: Final = 64 * 1024
#: the longest response head taken (httpcore's limit)
MAX_HEAD: Final = 100 * 1024
USER_AGENT: Final = f"logwatch/{__version__}"

#: httpcore's and h11's exceptions as the httpx client raises them
_ERRORS: Final[tuple[tuple[type[Exception], type[httpx.HTTPError]], ...]] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (h11.RemoteProtocolError, httpx.RemoteProtocolError),
    (h11.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.NetworkError, httpx.NetworkError),
)


class _Route:
    """What a POST to one URL always sends: the origin, the target and the fixed headers."""

    __slots__ = ("headers", "host", "origin", "port", "target", "tls", "url")

    def __init__(self, url: httpx.URL) -> None:
        self.url = url
        self.tls = url.scheme == "https"
        self.host = url.raw_host.decode("ascii")
        self.port = url.port or (443 if self.tls else 80)
        self.target = url.raw_path
        self.origin = (self.tls, self.host, self.port)
        self.headers: list[tuple[bytes, bytes]] = [
            (b"Host", url.netloc), (b"Accept", b"*/*"), (b"Accept-Encoding", b"identity"),
            (b"User-Agent", USER_AGENT.encode()), (b"Content-Type", b"application/json"),
        ]

    def request(self, content: bytes) -> h11.Request:
        """The request head for ``content``."""
        length = (b"Content-Length", str(len(content)).encode())
        return h11.Request(method=b"POST", target=self.target, headers=[*self.headers, length])


class _Connection:
    """One HTTP/1.1 connection: httpcore's network stream, h11's protocol state."""

    def __init__(self, route: _Route, context: ssl.SSLContext | None, timeout: float) -> None:
        """Connect to ``route``'s origin; ``context``: TLS on it (None: plain HTTP)."""
        self.timeout = timeout
        self.origin = route.origin
        self.stream = httpcore.SyncBackend().connect_tcp(route.host, route.port, timeout=timeout)
        if context is not None:
            try:
                self.stream = self.stream.start_tls(context, server_hostname=route.host,
                                                    timeout=timeout)
            except BaseException:
                self.stream.close()
                raise
        self.protocol = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self.idle_since = time.monotonic()

    def reusable(self, route: _Route) -> bool:
        """Idle, to ``route``'s origin, not expired, and not closed by the server (which an
        idle connection with something to read is)."""
        return (self.origin == route.origin and self.protocol.our_state is h11.IDLE
                and time.monotonic() - self.idle_since < KEEPALIVE_EXPIRY
                and not self.stream.get_extra_info("is_readable"))

    def post(self, head: h11.Request, content: bytes) -> tuple[int, list[tuple[bytes, bytes]],
                                                                bytes]:
        """Send one request, read its whole answer: (status, raw headers, body)."""
        protocol = self.protocol
        self.stream.write(protocol.send(head) + protocol.send(h11.Data(data=content))
                          + protocol.send(h11.EndOfMessage()), self.timeout)
        status, headers, body = 0, [], []
        while True:
            event = protocol.next_event()
            if event is h11.NEED_DATA:
                protocol.receive_data(self.stream.read(READ_SIZE, self.timeout))
            elif type(event) is h11.Response:
                status, headers = event.status_code, event.headers.raw_items()
            elif type(event) is h11.Data:
                body.append(event.data)
            elif type(event) is h11.EndOfMessage:
                break
            elif type(event) is not h11.InformationalResponse:  # closed, or paused (a 101)
                raise httpx.RemoteProtocolError(f"unexpected {type(event).__name__} from server")
        if protocol.our_state is h11.DONE and protocol.their_state is h11.DONE:
            protocol.start_next_cycle()
            self.idle_since = time.monotonic()
        return status, headers, b"".join(body)

    def close(self) -> None:
        """Close the socket."""
        self.stream.close()


class Http:
    """One sender's HTTP client, for the one request it makes: a JSON POST, read whole.

    ``transport``: another one (tests); the POSTs then go through an :class:`httpx.Client`,
    as they do when the environment names a proxy.
    """

    def __init__(self, timeout: float = HTTP_TIMEOUT, *,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.timeout = timeout
        # what httpx reads for its proxy mounts; the client applies them (and NO_PROXY)
        self._direct = transport is None and not urllib.request.getproxies()
        self.client = httpx.Client(timeout=timeout, follow_redirects=False,
                                   headers={"User-Agent": USER_AGENT}, transport=transport)
        self._route: _Route | None = None
        self._conn: _Connection | None = None
        self._context: ssl.SSLContext | None = None

    def post(self, url: httpx.URL, content: bytes) -> httpx.Response:
        """POST ``content`` (JSON) to ``url``; the answer is read whole."""
        if not self._direct:
            return self.client.post(url, content=content,
                                    headers={"Content-Type": "application/json"})
        route = self._route
        if route is None or route.url is not url:
            route = self._route = _Route(url)
        try:
            status, headers, body = self._connection(route).post(route.request(content),
                                                                 content)
        except BaseException as exc:
            self._drop()
            for theirs, ours in _ERRORS:
                if isinstance(exc, theirs):
                    raise ours(str(exc)) from exc
            raise
        return httpx.Response(status, headers=headers, content=body)

    def _connection(self, route: _Route) -> _Connection:
        """The kept connection if it can take a request, else a new one."""
        conn = self._conn
        if conn is not None and conn.reusable(route):
            return conn
        self._drop()
        self._conn = _Connection(route, self._tls() if route.tls else None, self.timeout)
        return self._conn

    def _tls(self) -> ssl.SSLContext:
        """httpx's default SSL context (certifi, or SSL_CERT_FILE / SSL_CERT_DIR), made once."""
        if self._context is None:
            self._context = httpx.create_ssl_context()
            self._context.set_alpn_protocols(["http/1.1"])
        return self._context

    def _drop(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def close(self) -> None:
        """Close the connections."""
        self._drop()
        self.client.close()

    def __enter__(self) -> Http:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def new_client(timeout: float = HTTP_TIMEOUT) -> Http:
    """An HTTP client for one sender thread."""
    return Http(timeout)
