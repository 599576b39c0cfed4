"""The senders' HTTP client: one kept connection, a strict HTTP/1.1 parser, httpx's errors."""

from __future__ import annotations

import contextlib
import gzip
import json
import select
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

import logwatch.delivery.destinations.http as http
from logwatch.delivery.destinations.http import Http
from tests.fakeapi import Canned, FakeAPI

BODY = b'{"embeds":[]}'
OK = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about the direct path: no proxy from the environment."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def message(text: str) -> bytes:
    """A Discord message the fake takes."""
    return json.dumps({"content": text, "allowed_mentions": {"parse": []}}).encode()


def wait_for(condition: Callable[[], bool], what: str, deadline: float = 10.0) -> None:
    """Poll ``condition`` until it holds, or fail after ``deadline`` s."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


class Scripted:
    """A TCP server on 127.0.0.1 that runs ``serve(sock)`` for each connection it accepts."""

    def __init__(self, serve: Callable[[socket.socket], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = httpx.URL(f"http://127.0.0.1:{self.listener.getsockname()[1]}/hook?wait=true")
        self.accepted = 0
        self.requests: list[bytes] = []
        self._serve = serve
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            # a client that hangs up on a bad answer (before reading all of it) is no error
            with sock, contextlib.suppress(OSError):
                self._serve(sock)

    def read_request(self, sock: socket.socket) -> bool:
        """Read one request (head and Content-Length body); False at the end of the stream."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return False
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            body += sock.recv(65536)
        self.requests.append(head + b"\r\n\r\n" + body)
        return True

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def scripted() -> Iterator[Callable[[Callable[[Scripted, socket.socket], None]], Scripted]]:
    servers: list[Scripted] = []

    def start(serve: Callable[[Scripted, socket.socket], None]) -> Scripted:
        server = Scripted(lambda sock: serve(server, sock))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def answering(scripted: Callable[..., Scripted], answer: bytes) -> Scripted:
    """A :class:`Scripted` server that sends ``answer`` to every request."""
    def serve(server: Scripted, sock: socket.socket) -> None:
        while server.read_request(sock):
            sock.sendall(answer)

    return scripted(serve)


def test_posts_share_one_kept_connection(fakeapi: FakeAPI) -> None:
    """Three POSTs, one connection; each is the JSON POST httpx would make, answered whole."""
    url = httpx.URL(fakeapi.discord_url() + "?wait=true")
    with Http() as client:
        first = client.post(url, message("a"))
        conn = client._conn
        answers = [client.post(url, message(str(n))) for n in range(2)]
        assert client._conn is conn
    assert [r.status_code for r in (first, *answers)] == [200, 200, 200]
    assert first.json()["id"]
    assert [r.body["content"] for r in fakeapi.received] == ["a", "0", "1"]
    assert [r.query for r in fakeapi.received] == [{"wait": "true"}] * 3


def test_the_request_head(scripted: Callable[..., Scripted]) -> None:
    """Method, target, Host, our User-Agent, JSON and the body's length; nothing compressed."""
    server = answering(scripted, OK)
    with Http() as client:
        assert client.post(server.url, BODY).json() == {}
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /hook?wait=true HTTP/1.1"
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(b":") for line in lines[1:])}
    assert headers[b"host"] == f"127.0.0.1:{server.url.port}".encode()
    assert headers[b"user-agent"] == http.USER_AGENT.encode()
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"content-length"] == str(len(BODY)).encode()
    assert headers[b"accept-encoding"] == b"identity"
    assert body == BODY


def test_a_connection_the_server_closed_while_idle_is_replaced(
        scripted: Callable[..., Scripted]) -> None:
    """A server that closes an idle connection: the next POST opens a new one, and no request
    is written to the closed one (which would lose it without an answer)."""
    def serve(server: Scripted, sock: socket.socket) -> None:
        if server.read_request(sock):
            sock.sendall(OK)  # then the connection closes, as a server's idle timeout does

    server = scripted(serve)
    with Http() as client:
        assert client.post(server.url, BODY).status_code == 200
        conn = client._conn
        assert conn is not None
        wait_for(lambda: bool(select.select([conn.sock], [], [], 0)[0]),
                 "the server's close to reach us")
        assert client.post(server.url, BODY).status_code == 200
    assert server.accepted == 2
    assert len(server.requests) == 2


def test_connection_close_and_http_1_0_are_honoured(fakeapi: FakeAPI,
                                                    scripted: Callable[..., Scripted]) -> None:
    """``Connection: close`` or an HTTP/1.0 answer ends the connection: the next POST reconnects."""
    fakeapi.reply(Canned(200, {"id": "1"}, headers={"Connection": "close"}))
    url = httpx.URL(fakeapi.discord_url() + "?wait=true")

    def serve(server: Scripted, sock: socket.socket) -> None:
        if server.read_request(sock):
            sock.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\": 1}")

    old = scripted(serve)
    with Http() as client:
        assert client.post(url, BODY).json() == {"id": "1"}
        assert client._conn is None or not client._conn.reusable(http._Route(url))
        assert client.post(url, message("a")).status_code == 200
        # no length: the body ends with the connection
        assert [client.post(old.url, BODY).json() for _ in range(2)] == [{"a": 1}] * 2
    assert old.accepted == 2


def test_an_idle_connection_expires(fakeapi: FakeAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kept no longer than KEEPALIVE_EXPIRY idle, as httpx keeps its connections."""
    monkeypatch.setattr(http, "KEEPALIVE_EXPIRY", 0.0)
    url = httpx.URL(fakeapi.discord_url() + "?wait=true")
    with Http() as client:
        client.post(url, message("a"))
        first = client._conn
        client.post(url, message("b"))
        assert client._conn is not first
    assert len(fakeapi.received) == 2


def test_interim_chunked_and_many_pieces(scripted: Callable[..., Scripted]) -> None:
    """A 100 Continue first, a chunked body, a head that arrives a byte at a time."""
    answer = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n")

    def serve(server: Scripted, sock: socket.socket) -> None:
        while server.read_request(sock):
            for i in range(len(answer)):
                sock.sendall(answer[i:i + 1])

    server = scripted(serve)
    with Http() as client:
        for _ in range(2):
            reply = client.post(server.url, BODY)
            assert (reply.status_code, reply.headers["retry-after"], reply.json()) == (
                429, "3", {"a": 1})
    assert server.accepted == 1


def test_a_compressed_answer_is_decoded(scripted: Callable[..., Scripted]) -> None:
    """We ask for no compression; a server that compresses anyway is still understood."""
    data = gzip.compress(b'{"ok": true}')

    def serve(server: Scripted, sock: socket.socket) -> None:
        while server.read_request(sock):
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: "
                         + str(len(data)).encode() + b"\r\n\r\n" + data)

    server = scripted(serve)
    with Http() as client:
        assert [client.post(server.url, BODY).json() for _ in range(2)] == [{"ok": True}] * 2


@pytest.mark.parametrize(("coding", "data", "why"), [
    (b"gzip", gzip.compress(b" " * (http.MAX_BODY + 1)), "over"),  # 1 KiB -> over 1 MiB
    (b"gzip", b"not gzip at all", "undecodable"),
    (b"br", b"{}", "unexpected Content-Encoding"),
    (b"gzip, gzip", gzip.compress(gzip.compress(b"{}")), "unexpected Content-Encoding"),
], ids=["bomb", "garbage", "brotli", "stacked"])
def test_a_compressed_answer_is_bounded(scripted: Callable[..., Scripted], coding: bytes,
                                        data: bytes, why: str) -> None:
    """Decoded, a small answer must not become a huge body: past MAX_BODY, undecodable or in
    a coding we cannot bound, it is a protocol error (retried), like any broken answer."""
    def serve(server: Scripted, sock: socket.socket) -> None:
        if server.read_request(sock):
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Encoding: " + coding
                         + b"\r\nContent-Length: " + str(len(data)).encode() + b"\r\n\r\n"
                         + data)

    server = scripted(serve)
    with Http() as client, pytest.raises(httpx.RemoteProtocolError, match=why):
        client.post(server.url, BODY)


@pytest.mark.parametrize("odd", [b"plain", b"\xe9t\xe9"], ids=["utf-8", "latin-1"])
def test_headers_read_as_httpx_reads_them(odd: bytes) -> None:
    """By any case, a repeated header's values joined, UTF-8 values decoded unless one is not
    UTF-8 (then all are Latin-1)."""
    raw = [(b"X-RateLimit-Remaining", b"0"), (b"Vary", b"a"), (b"vary", b"b"),
           (b"X-Name", "caf\u00e9".encode()), (b"X-Odd", odd)]
    ours, theirs = http.Headers(raw), httpx.Headers(raw)
    for name in ("x-ratelimit-remaining", "X-RATELIMIT-REMAINING", "vary", "x-name", "x-odd",
                 "absent"):
        assert ours.get(name) == theirs.get(name), name
    assert len(ours) == 4
    assert ours.get("absent", "1") == "1"


CHUNKED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nX: " + b"a" * (http.MAX_HEAD + 10) + b"\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: " + str(http.MAX_BODY + 1).encode() + b"\r\n\r\n"
    + b"{" * (http.MAX_BODY + 1),
    CHUNKED + b"0" * 5000 + b"\r\n\r\n",
    CHUNKED + b"%x\r\n" % (http.MAX_BODY + 1) + b"{" * (http.MAX_BODY + 1) + b"\r\n0\r\n\r\n",
    CHUNKED + (b"ffff\r\n" + b"{" * 0xFFFF + b"\r\n") * 17 + b"0\r\n\r\n",
    CHUNKED + b"0\r\nX: " + b"a" * (http.MAX_HEAD + 10) + b"\r\n\r\n",
    b"HTTP/1.0 200 OK\r\n\r\n" + b"{" * (http.MAX_BODY + 10),
], ids=["huge-head", "huge-body", "huge-chunk-line", "huge-chunk", "chunks-over-max",
        "huge-trailer", "huge-unframed"])
def test_answers_over_a_limit_are_refused(scripted: Callable[..., Scripted],
                                          answer: bytes) -> None:
    """Each answer is whole but for one part over its limit (head, body, chunk line,
    trailer): refused for that, not for ending early."""
    def serve(server: Scripted, sock: socket.socket) -> None:
        if server.read_request(sock):
            sock.sendall(answer if server.accepted == 1 else OK)

    server = scripted(serve)
    with Http() as client:
        with pytest.raises(httpx.RemoteProtocolError, match=" over "):
            client.post(server.url, BODY)
        assert client._conn is None
        assert client.post(server.url, BODY).status_code == 200


@pytest.mark.parametrize(("answer", "error"), [
    (b"", httpx.RemoteProtocolError),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", httpx.RemoteProtocolError),
    (b"garbage\r\n\r\n", httpx.RemoteProtocolError),
    (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
     httpx.RemoteProtocolError),
    (b"HTTP/1.1 200 OK\r\nBad Header: 1\r\n\r\n", httpx.RemoteProtocolError),
    (b"HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 0\r\n\r\n", httpx.RemoteProtocolError),
    (b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\nContent-Length: 0\r\n\r\n",
     httpx.RemoteProtocolError),
    (b"HTTP/2 200\r\nContent-Length: 0\r\n\r\n", httpx.RemoteProtocolError),
    (b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n", httpx.RemoteProtocolError),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
     httpx.RemoteProtocolError),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n{}", httpx.RemoteProtocolError),
    (b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 30 + b"\r\n\r\n{}",
     httpx.RemoteProtocolError),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
     httpx.RemoteProtocolError),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
     httpx.RemoteProtocolError),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
     httpx.RemoteProtocolError),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n",
     httpx.RemoteProtocolError),
    # blanks that a backtracking pattern would try every way of splitting (minutes, not ms)
    (b"HTTP/1.1 200 OK\r\nX: " + b" \t" * 40_000 + b"y\x00\r\n\r\n", httpx.RemoteProtocolError),
    (b"HTTP/1.1 200 " + b" " * 90_000 + b"\x00\r\n\r\n", httpx.RemoteProtocolError),
], ids=["closed", "short-body", "garbage", "switching", "header-name", "control-in-value",
        "folded", "http-2", "short-status", "two-lengths", "negative-length", "huge-length",
        "gzip-coding", "bad-chunk-size", "bad-chunk-end", "no-last-chunk", "blank-storm",
        "blank-reason"])
def test_broken_answers_are_httpx_errors(scripted: Callable[..., Scripted], answer: bytes,
                                         error: type[Exception]) -> None:
    """What the server breaks is the httpx exception the client raises; the connection is
    dropped, and the next POST gets a new one."""
    def serve(server: Scripted, sock: socket.socket) -> None:
        if server.read_request(sock):
            sock.sendall(answer if server.accepted == 1 else OK)

    server = scripted(serve)
    with Http() as client:
        with pytest.raises(error):
            client.post(server.url, BODY)
        assert client._conn is None
        assert client.post(server.url, BODY).status_code == 200


@pytest.mark.parametrize(("answer", "kept"), [
    (b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}", True),
    (b"HTTP/1.1 200 \r\ncontent-length: 2, 2\r\nX-Empty:\r\nX-Pad:  a b \r\n\r\n{}", True),
    (b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\n"
     b"Transfer-Encoding: Chunked\r\nContent-Length: 99\r\n\r\n"
     b"2;ext=1\r\n{}\r\n0\r\nX-Trailer: 1\r\n\r\n", True),
    (b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\n{}",
     False),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK", False),
], ids=["bare-newlines", "odd-spacing", "hints-chunked", "close-token", "data-after"])
def test_odd_but_valid_answers(scripted: Callable[..., Scripted], answer: bytes,
                               kept: bool) -> None:
    """What h11 takes is taken; the connection is kept only when the answer ended cleanly."""
    server = answering(scripted, answer)
    with Http() as client:
        assert client.post(server.url, BODY).json() == {}
        assert (client._conn is not None and client._conn.reusable(http._Route(server.url))
                ) is kept


def test_an_error_quotes_nothing_the_server_sent(scripted: Callable[..., Scripted]) -> None:
    """Hostile bytes in a broken answer do not reach the error (hence no log line)."""
    def serve(server: Scripted, sock: socket.socket) -> None:
        if server.read_request(sock):
            sock.sendall(b"HTTP/1.1 200 OK\r\nEvil\x1b[31m: <@everyone>\r\n\r\n")

    server = scripted(serve)
    with Http() as client, pytest.raises(httpx.RemoteProtocolError) as raised:
        client.post(server.url, BODY)
    assert str(raised.value) == "malformed header line"


@pytest.mark.parametrize("dribble", [False, True], ids=["silent", "dribbling"])
def test_a_slow_answer_is_a_read_timeout(scripted: Callable[..., Scripted],
                                         dribble: bool) -> None:
    """A server that never answers times out (httpx.ReadTimeout), and so does one that sends a
    header now and then, each within the read timeout, never the end: the answer as a whole
    must come within the timeout."""
    release = threading.Event()

    def serve(server: Scripted, sock: socket.socket) -> None:
        if server.read_request(sock) and dribble:
            sock.sendall(b"HTTP/1.1 200 OK\r\n")
            while not release.wait(0.05):
                sock.sendall(b"X-A: b\r\n")
        release.wait(10)

    server = scripted(serve)
    try:
        with Http(timeout=0.5) as client, pytest.raises(httpx.ReadTimeout):
            client.post(server.url, BODY)
    finally:
        release.set()


def test_no_server_is_a_connect_error() -> None:
    """A closed port cannot connect (httpx.ConnectError)."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with Http() as client, pytest.raises(httpx.ConnectError):
        client.post(httpx.URL(f"http://127.0.0.1:{port}/x"), BODY)


# -- TLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the openssl command line makes it)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a certificate")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class _Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        data = json.dumps({"echo": json.loads(body)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def tls_url(certificate: tuple[Path, Path]) -> Iterator[httpx.URL]:
    """An HTTPS server on 127.0.0.1 with :func:`certificate`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield httpx.URL(f"https://127.0.0.1:{server.server_address[1]}/hook")
    finally:
        server.shutdown()
        server.server_close()


def test_https_verifies_the_server_as_httpx_does(tls_url: httpx.URL,
                                                 certificate: tuple[Path, Path],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """TLS with httpx's default context: SSL_CERT_FILE trusted, a self-signed server refused."""
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with Http() as client, pytest.raises(httpx.ConnectError):
        client.post(tls_url, BODY)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    with Http() as client:
        answers = [client.post(tls_url, json.dumps({"n": n}).encode()).json() for n in range(3)]
        assert client._conn is not None
    assert answers == [{"echo": {"n": n}} for n in range(3)]
