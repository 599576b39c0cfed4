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

import json
import os
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Protocol

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
#: the longest response body taken: Discord's and Telegram's answers are a few hundred
#: bytes; a server that sends more (or for ever) is broken, not waited out
MAX_BODY: Final = 1 << 20
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


class Answer(Protocol):
    """What the destinations read of a response (an :class:`httpx.Response` is one)."""

    @property
    def status_code(self) -> int:
        """The HTTP status."""

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers, by case-insensitive name."""

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` when it is not)."""


class Headers(Mapping[str, str]):
    """Response headers by case-insensitive name, as :class:`httpx.Headers` reads them: a
    repeated one's values joined by ``", "``, all UTF-8 or else all Latin-1."""

    __slots__ = ("_items",)

    def __init__(self, raw: Sequence[tuple[bytes, bytes]]) -> None:
        try:
            decoded = [(name.decode().lower(), value.decode()) for name, value in raw]
        except UnicodeDecodeError:
            decoded = [(name.decode("latin-1").lower(), value.decode("latin-1"))
                       for name, value in raw]
        items: dict[str, str] = {}
        for key, text in decoded:
            items[key] = f"{items[key]}, {text}" if key in items else text
        self._items = items

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class Reply:
    """A response read whole on the direct path: the :class:`Answer` and no more (an
    :class:`httpx.Response` would also build a stream, decoders and a request per POST)."""

    __slots__ = ("_headers", "_raw", "content", "status_code")

    def __init__(self, status_code: int, raw: list[tuple[bytes, bytes]], content: bytes) -> None:
        self.status_code = status_code
        self.content = content
        self._raw = raw
        self._headers: Headers | None = None

    @property
    def headers(self) -> Headers:
        """The response headers, made when first read."""
        if self._headers is None:
            self._headers = Headers(self._raw)
        return self._headers

    def json(self) -> Any:
        """The body parsed as JSON, as :meth:`httpx.Response.json` does."""
        return json.loads(self.content)


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
        status, headers, body, size = 0, [], [], 0
        while True:
            event = protocol.next_event()
            if event is h11.NEED_DATA:
                protocol.receive_data(self.stream.read(READ_SIZE, self.timeout))
            elif type(event) is h11.Response:
                status, headers = event.status_code, event.headers.raw_items()
            elif type(event) is h11.Data:
                body.append(event.data)
                size += len(event.data)
                if size > MAX_BODY:
                    raise httpx.RemoteProtocolError(f"response body over {MAX_BODY} bytes")
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
        self._transport = transport
        # what httpx reads for its proxy mounts; the client applies them (and NO_PROXY)
        self._direct = transport is None and not urllib.request.getproxies()
        #: made at the first POST that needs it (it loads a CA bundle: tens of ms)
        self._client: httpx.Client | None = None
        self._route: _Route | None = None
        self._conn: _Connection | None = None

    def post(self, url: httpx.URL, content: bytes) -> Answer:
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
        if any(name.lower() == b"content-encoding" for name, _ in headers):
            # asked for none, got some anyway: httpx decodes it
            return httpx.Response(status, headers=headers, content=body)
        return Reply(status, headers, body)

    def _connection(self, route: _Route) -> _Connection:
        """The kept connection if it can take a request, else a new one."""
        conn = self._conn
        if conn is not None and conn.reusable(route):
            return conn
        self._drop()
        self._conn = _Connection(route, _tls_context() if route.tls else None, self.timeout)
        return self._conn

    @property
    def client(self) -> httpx.Client:
        """The httpx client POSTs go through when they do not go direct."""
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, follow_redirects=False,
                                        headers={"User-Agent": USER_AGENT},
                                        transport=self._transport)
        return self._client

    def _drop(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def close(self) -> None:
        """Close the connections."""
        self._drop()
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Http:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


#: httpx's default SSL contexts, by the environment they read
_TLS: dict[tuple[str | None, str | None], ssl.SSLContext] = {}
_TLS_LOCK = threading.Lock()


def _tls_context() -> ssl.SSLContext:
    """httpx's default SSL context (certifi, or SSL_CERT_FILE / SSL_CERT_DIR), made once for
    every sender: loading the CA bundle takes tens of ms and a few MB, and a context is safe
    to share between threads."""
    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    with _TLS_LOCK:
        context = _TLS.get(key)
        if context is None:
            context = _TLS[key] = httpx.create_ssl_context()
            context.set_alpn_protocols(["http/1.1"])
        return context


def new_client(timeout: float = HTTP_TIMEOUT) -> Http:
    """An HTTP client for one sender thread."""
    return Http(timeout)
