"""One sender's HTTP client: a JSON POST to one URL, again and again, as cheaply as it can be.

httpx's client builds a :class:`httpx.Request`, merges headers, runs the connection pool's
bookkeeping and httpcore's trace hooks, then h11's state machine, for every request; for a
sender that posts a few times a second to one URL that cost more CPU than everything else it
does. So, with no proxy in the environment, :class:`Http` keeps one socket of its own (TLS on
it with httpx's SSL context), kept alive as httpx keeps it (closed after
:data:`KEEPALIVE_EXPIRY` s idle, or when the server closed it), writes each request whole
(its head prepared once per URL) and reads the answer with a small, strict HTTP/1.1 parser
(:class:`_Answer`): a status line, headers within :data:`MAX_HEAD` bytes, a body framed by
``Content-Length``, ``chunked`` or the end of the connection, within :data:`MAX_BODY` bytes.
Anything else (garbage, a truncated or over-long answer, a body framing h11 would refuse) is
an :class:`httpx.RemoteProtocolError` and the connection is dropped: the sender retries.
Errors are httpx's exceptions, as its client raises them. With a proxy, or a transport given
(tests), a POST goes through an :class:`httpx.Client`.
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
import ssl
import threading
import time
import urllib.request
import zlib
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Protocol

import httpx

from logwatch import __version__

HTTP_TIMEOUT: Final = 10.0
#: seconds an idle connection is kept (httpx's default): a server closes idle ones sooner or
#: later, and a request written just as it does is lost without an answer
KEEPALIVE_EXPIRY: Final = 5.0
READ_SIZE: Final = 64 * 1024
#: the longest response head taken (httpcore's limit), and the longest chunked trailer
MAX_HEAD: Final = 100 * 1024
#: the longest response body taken: Discord's and Telegram's answers are a few hundred
#: bytes; a server that sends more (or for ever) is broken, not waited out
MAX_BODY: Final = 1 << 20
#: the longest chunk-size line taken (a size, and extensions that are ignored)
MAX_CHUNK_LINE: Final = 1024
USER_AGENT: Final = f"logwatch/{__version__}"

#: the end of a response head (h11 also takes bare newlines)
_HEAD_END: Final = re.compile(rb"\r?\n\r?\n")
#: the patterns below match possessively (``*+``): a hostile 100 KiB head of blanks costs one
#: pass, not a backtracking search (Python 3.11's regular expressions)
_STATUS_LINE: Final = re.compile(
    rb"HTTP/1\.([01]) ([1-9][0-9]{2})(?: [\t\x20-\x7e\x80-\xff]*+)?\r?\n")
_VISIBLE: Final = rb"[\x21-\x7e\x80-\xff]"
#: one header line: a token, a colon, a value of visible characters and inner blanks
_FIELD: Final = (rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]++):[ \t]*+((?:" + _VISIBLE
                 + rb"(?:[ \t]*+" + _VISIBLE + rb")*+)?)[ \t]*+\r?\n")
_HEADER_FIELD: Final = re.compile(_FIELD)
#: the header lines of a head, each one a :data:`_HEADER_FIELD` (checked in one pass, then
#: read in one more: no Python loop over lines)
_HEADER_BLOCK: Final = re.compile(rb"(?:" + _FIELD + rb")*+")
_CHUNK_SIZE: Final = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*+(?:;[^\r\n]*+)?\r?\n")
_CONTENT_LENGTH: Final = re.compile(rb"[0-9]{1,20}")
#: what a request target and a Host header may hold (httpx's URL percent-encodes the rest)
_REQUEST_PART: Final = re.compile(rb"[\x21-\x7e]+")

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
    """What a POST to one URL always sends: the origin, and the request head but its length."""

    __slots__ = ("head", "host", "origin", "port", "tls", "url")

    def __init__(self, url: httpx.URL) -> None:
        self.url = url
        self.tls = url.scheme == "https"
        self.host = url.raw_host.decode("ascii")
        self.port = url.port or (443 if self.tls else 80)
        self.origin = (self.tls, self.host, self.port)
        target, netloc = url.raw_path, url.netloc
        if not (_REQUEST_PART.fullmatch(target) and _REQUEST_PART.fullmatch(netloc)):
            # httpx's URL percent-encodes; say nothing of the URL itself (it holds the token)
            raise httpx.LocalProtocolError("the URL cannot be written as an HTTP request")
        self.head = b"".join((
            b"POST ", target, b" HTTP/1.1\r\nHost: ", netloc,
            b"\r\nAccept: */*\r\nAccept-Encoding: identity\r\nUser-Agent: ", USER_AGENT.encode(),
            b"\r\nContent-Type: application/json\r\nContent-Length: ",
        ))

    def request(self, content: bytes) -> bytes:
        """The whole request that POSTs ``content``."""
        return b"%b%d\r\n\r\n%b" % (self.head, len(content), content)


def _connect(route: _Route, context: ssl.SSLContext | None, timeout: float) -> socket.socket:
    """A socket to ``route``'s origin, TLS on it with ``context`` (None: plain HTTP)."""
    try:
        sock = socket.create_connection((route.host, route.port), timeout)
    except TimeoutError as exc:
        raise httpx.ConnectTimeout(str(exc) or "timed out") from exc
    except OSError as exc:
        raise httpx.ConnectError(str(exc)) from exc
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname=route.host)
    except TimeoutError as exc:
        sock.close()
        raise httpx.ConnectTimeout(str(exc) or "timed out") from exc
    except OSError as exc:  # ssl.SSLError included: a certificate refused
        sock.close()
        raise httpx.ConnectError(str(exc)) from exc
    except BaseException:
        sock.close()
        raise
    return sock


#: zlib's window bits that take a gzip or a zlib stream alike
_GZIP_OR_ZLIB = 32 + zlib.MAX_WBITS


def _decoded(headers: Sequence[tuple[bytes, bytes]], body: bytes) -> bytes:
    """``body`` without its ``Content-Encoding`` (asked for none, a server may send one):
    gzip or deflate, decoded up to MAX_BODY (a small bomb must not become a huge body);
    any other, or several, is a protocol error."""
    codings = [value.strip().lower() for name, value in headers
               if name.lower() == b"content-encoding" and value.strip().lower() != b"identity"]
    if not codings:
        return body
    if codings not in ([b"gzip"], [b"x-gzip"], [b"deflate"]):
        raise _broken("unexpected Content-Encoding")
    unzip = zlib.decompressobj(_GZIP_OR_ZLIB)
    try:
        out = unzip.decompress(body, MAX_BODY + 1)
    except zlib.error as exc:
        raise _broken("undecodable compressed body") from exc
    if len(out) > MAX_BODY or unzip.unconsumed_tail:
        raise _broken(f"response body over {MAX_BODY} bytes once decoded")
    return out


def _broken(what: str) -> httpx.RemoteProtocolError:
    """The error for an answer that is not HTTP/1.1 as we take it (no server bytes quoted)."""
    return httpx.RemoteProtocolError(what)


class _Answer:
    """One response read from a socket, strictly, within :data:`MAX_HEAD` and :data:`MAX_BODY`.

    The whole answer must arrive within ``timeout`` s of the request (plus one read's own
    timeout): a server dribbling bytes is cut off, not waited out.
    """

    __slots__ = ("buf", "deadline", "sock")

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.deadline = time.monotonic() + timeout

    def read(self) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        """(status, raw headers, body, whether the connection can take the next request)."""
        version, status, headers = self._head()
        while status < 200:  # interim answers (100 Continue, 103) precede the real one
            if status == 101:
                raise _broken("unexpected 101 Switching Protocols from server")
            version, status, headers = self._head()
        length, chunked, close = _framing(headers)
        if status in (204, 304):
            body = b""
        elif chunked:
            body = self._chunked()
        elif length is not None:
            if length > MAX_BODY:
                raise _broken(f"response body over {MAX_BODY} bytes")
            body = self._exactly(length)
        else:  # no length: the body ends with the connection (HTTP/1.0 style)
            return status, headers, self._until_closed(), False
        return status, headers, body, version == b"1" and not close and not self.buf

    def _more(self) -> bool:
        """Read what the server sent next; False at the end of the stream."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise httpx.ReadTimeout("the answer took too long")
        try:
            self.sock.settimeout(left)  # the whole answer's deadline, not one per read
            data = self.sock.recv(READ_SIZE)
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out") from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc)) from exc
        self.buf += data
        return bool(data)

    def _need_more(self) -> None:
        if not self._more():
            raise _broken("server disconnected before the end of its answer")

    def _head(self) -> tuple[bytes, int, list[tuple[bytes, bytes]]]:
        """The next head: (minor version, status, raw headers)."""
        searched = 0
        while (end := _HEAD_END.search(self.buf, max(searched - 3, 0))) is None:
            if len(self.buf) > MAX_HEAD:
                raise _broken(f"response head over {MAX_HEAD} bytes")
            searched = len(self.buf)
            self._need_more()
        if end.start() > MAX_HEAD:
            raise _broken(f"response head over {MAX_HEAD} bytes")
        head = bytes(self.buf[:end.start()]) + b"\n"  # each line ends with its newline
        del self.buf[:end.end()]
        status = _STATUS_LINE.match(head)
        if status is None:
            raise _broken("malformed status line")
        if _HEADER_BLOCK.fullmatch(head, status.end()) is None:
            raise _broken("malformed header line")
        return status[1], int(status[2]), _HEADER_FIELD.findall(head, status.end())

    def _exactly(self, size: int) -> bytes:
        while len(self.buf) < size:
            self._need_more()
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data

    def _line(self, limit: int) -> bytes:
        """The next line, its newline included, at most ``limit`` bytes."""
        searched = 0
        while (end := self.buf.find(b"\n", searched)) < 0:
            if len(self.buf) > limit:
                raise _broken(f"line over {limit} bytes in the response body")
            searched = len(self.buf)
            self._need_more()
        if end >= limit:
            raise _broken(f"line over {limit} bytes in the response body")
        return self._exactly(end + 1)

    def _chunked(self) -> bytes:
        body = bytearray()
        while True:
            size = _CHUNK_SIZE.fullmatch(self._line(MAX_CHUNK_LINE))
            if size is None:
                raise _broken("malformed chunk size")
            if not (length := int(size[1], 16)):
                break
            if len(body) + length > MAX_BODY:
                raise _broken(f"response body over {MAX_BODY} bytes")
            data = self._exactly(length + 2)
            if data[-2:] != b"\r\n":
                raise _broken("malformed chunk end")
            body += data[:-2]
        trailer = 0
        while (line := self._line(MAX_HEAD)) not in (b"\r\n", b"\n"):
            trailer += len(line)
            if trailer > MAX_HEAD:
                raise _broken(f"response trailer over {MAX_HEAD} bytes")
        return bytes(body)

    def _until_closed(self) -> bytes:
        while self._more():
            if len(self.buf) > MAX_BODY:
                raise _broken(f"response body over {MAX_BODY} bytes")
        return bytes(self.buf)


def _framing(headers: list[tuple[bytes, bytes]]) -> tuple[int | None, bool, bool]:
    """(Content-Length or None, chunked, ``Connection: close``), as strictly as h11 reads them:
    one length however often repeated, ``chunked`` the only transfer coding (it beats a length)."""
    length: int | None = None
    chunked = close = False
    for name, value in headers:
        key = name.lower()
        if key == b"content-length":
            values = {item.strip() for item in value.split(b",")}
            text = values.pop() if len(values) == 1 else b""
            if not _CONTENT_LENGTH.fullmatch(text) or length not in (None, int(text)):
                raise _broken("bad Content-Length")
            length = int(text)
        elif key == b"transfer-encoding":
            if chunked or value.lower() != b"chunked":
                raise _broken("unsupported Transfer-Encoding")
            chunked = True
        elif key == b"connection":
            close = close or b"close" in {item.strip().lower() for item in value.split(b",")}
    return (None if chunked else length), chunked, close


class _Connection:
    """One HTTP/1.1 connection: a socket, a request written whole, its answer read whole."""

    def __init__(self, route: _Route, context: ssl.SSLContext | None, timeout: float) -> None:
        """Connect to ``route``'s origin; ``context``: TLS on it (None: plain HTTP)."""
        self.timeout = timeout
        self.origin = route.origin
        self.sock = _connect(route, context, timeout)
        self._poll = select.poll()  # not select(): a daemon's descriptors may pass 1024
        self._poll.register(self.sock, select.POLLIN)
        #: the last answer was read whole and leaves the connection open
        self.kept = True
        self.idle_since = time.monotonic()

    def reusable(self, route: _Route) -> bool:
        """Idle, to ``route``'s origin, not expired, and not closed by the server (which an
        idle connection with something to read is)."""
        return (self.origin == route.origin and self.kept
                and time.monotonic() - self.idle_since < KEEPALIVE_EXPIRY
                and not self._poll.poll(0))

    def post(self, request: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send one request, read its whole answer: (status, raw headers, body)."""
        self.kept = False  # until its answer is read whole
        try:
            self.sock.settimeout(self.timeout)  # the last answer's read left less
            self.sock.sendall(request)
        except TimeoutError as exc:
            raise httpx.WriteTimeout(str(exc) or "timed out") from exc
        except OSError as exc:
            raise httpx.WriteError(str(exc)) from exc
        status, headers, body, self.kept = _Answer(self.sock, self.timeout).read()
        self.idle_since = time.monotonic()
        return status, headers, body

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


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
            status, headers, body = self._connection(route).post(route.request(content))
        except BaseException:
            self._drop()  # an answer not read whole leaves the connection in an unknown state
            raise
        return Reply(status, headers, _decoded(headers, body))

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
