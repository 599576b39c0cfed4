"""A fake Discord + Telegram on 127.0.0.1 that behaves like the real ones where it matters.

It enforces rate limits (429 with ``retry_after`` and ``X-RateLimit-*`` headers),
validates payloads the way the services do (length limits, ``allowed_mentions``,
Telegram's HTML), can be told to fail (5xx, dropped connections, down for a while,
unknown webhook, bad token, bot kicked, chat not found, group migrated) and records
every request it accepted.

    with FakeAPI(discord_window=(5, 0.2)) as fake:
        url = fake.discord_url()          # a registered webhook
        fake.fail("500", times=2)         # the next two requests get a 500
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

WEBHOOK_ID = "112233"
WEBHOOK_TOKEN = "whk-SECRET-aB3dE5fG7hJ9kL1mN3pQ5rS7"  # noqa: S105 - fake credential
BOT_TOKEN = "123456:SECRET-bot-tOkEn-Zx9Yw8Vu7Ts6Rq5"  # noqa: S105 - fake credential
CHAT_ID = -1001234567890

_TG_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "code", "pre", "a",
            "tg-spoiler", "span", "blockquote", "tg-emoji"}
_TG_ENTITIES = {"lt", "gt", "amp", "quot"}
_HTML_TOKEN = re.compile(r"<[^<>]*>|[<>]|&(?:#\d+;|#x[0-9a-fA-F]+;|[A-Za-z]+;)?")


def utf16_len(text: str) -> int:
    """Length the way the services count it."""
    return len(text.encode("utf-16-le")) // 2


def telegram_html_problems(text: str) -> list[str]:
    """Why Telegram would answer "can't parse entities" (empty when the HTML is fine)."""
    problems: list[str] = []
    stack: list[str] = []
    for m in _HTML_TOKEN.finditer(text):
        piece = m.group()
        if piece in ("<", ">"):
            problems.append(f"unescaped {piece!r} at {m.start()}")
        elif piece.startswith("&"):
            name = piece[1:-1]
            if len(piece) == 1 or not (name.startswith("#") or name in _TG_ENTITIES):
                problems.append(f"bad entity {piece!r} at {m.start()}")
        else:
            closing = piece.startswith("</")
            name = piece.strip("</>").split()[0] if piece.strip("</>").split() else ""
            if name not in _TG_TAGS:
                problems.append(f"unsupported tag {piece!r}")
            elif closing:
                if not stack or stack.pop() != name:
                    problems.append(f"unbalanced {piece!r}")
            else:
                stack.append(name)
    if stack:
        problems.append(f"unclosed tags {stack}")
    return problems


def discord_payload_problems(body: Any) -> list[str]:
    """Why Discord would answer 400 Invalid Form Body, plus our safety rule on mentions."""
    if not isinstance(body, dict):
        return ["body is not an object"]
    problems = []
    if body.get("allowed_mentions") != {"parse": []}:
        problems.append(f"allowed_mentions is {body.get('allowed_mentions')!r}")
    if utf16_len(body.get("content") or "") > 2000:
        problems.append("content over 2000")
    embeds = body.get("embeds") or []
    if not embeds and not body.get("content"):
        problems.append("empty message")
    if len(embeds) > 10:
        problems.append("more than 10 embeds")
    total = 0
    for embed in embeds:
        total += _embed_problems(embed, problems)
    if total > 6000:
        problems.append(f"embeds total {total} > 6000")
    return problems


def _embed_problems(embed: dict[str, Any], problems: list[str]) -> int:
    """Append what is wrong with one embed; return its size towards the 6000 total."""
    total = 0
    for key, limit in {"title": 256, "description": 4096}.items():
        n = utf16_len(embed.get(key) or "")
        total += n
        if n > limit:
            problems.append(f"embed {key} {n} > {limit}")
    footer = utf16_len((embed.get("footer") or {}).get("text") or "")
    total += footer
    if footer > 2048:
        problems.append("footer over 2048")
    fields = embed.get("fields") or []
    if len(fields) > 25:
        problems.append("more than 25 fields")
    for f in fields:
        total += utf16_len(f["name"]) + utf16_len(f["value"])
        if utf16_len(f["name"]) > 256 or utf16_len(f["value"]) > 1024 or not f["value"]:
            problems.append("bad field")
    return total


@dataclass
class Received:
    """A request the fake accepted."""

    service: str  # "discord" | "telegram"
    target: str  # webhook id, or chat id
    body: dict[str, Any]
    query: dict[str, str]
    at: float


@dataclass(frozen=True)
class Canned:
    """A reply sent as is, whatever the request: the hostile tests' malformed answers."""

    status: int
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def data(self) -> bytes:
        """The body's bytes (a str is encoded, anything else dumped as JSON)."""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class _Bucket:
    limit: int
    per: float
    times: deque[float] = field(default_factory=deque)

    def take(self, now: float) -> tuple[bool, int, float]:
        """(allowed, remaining, reset_after)."""
        while self.times and now - self.times[0] >= self.per:
            self.times.popleft()
        if len(self.times) >= self.limit:
            return False, 0, self.times[0] + self.per - now
        self.times.append(now)
        remaining = self.limit - len(self.times)
        reset = self.times[0] + self.per - now
        return True, remaining, reset


class FakeAPI:
    """The fake server; :meth:`close` (or ``with``) stops it."""

    def __init__(self, *, discord_window: tuple[int, float] = (5, 2.0),
                 telegram_window: tuple[int, float] = (1, 1.0),
                 telegram_group_window: tuple[int, float] = (20, 60.0)) -> None:
        self.discord_window = discord_window
        self.telegram_window = telegram_window
        self.telegram_group_window = telegram_group_window
        self.lock = threading.Lock()
        self.webhooks = {(WEBHOOK_ID, WEBHOOK_TOKEN)}
        self.bot_tokens = {BOT_TOKEN}
        self.chats: set[int | str] = {CHAT_ID, 42}
        self.migrations: dict[int | str, int] = {}
        self.updates: list[dict[str, Any]] = []
        self.webhook_set = False
        self.received: list[Received] = []
        self.violations: list[str] = []
        self.requests = 0
        self.rate_limited = 0
        self._failures: deque[str] = deque()
        self._canned: deque[Canned] = deque()
        #: how many canned replies were sent
        self.canned_sent = 0
        self._down_until = 0.0
        self._buckets: dict[tuple[str, str], list[_Bucket]] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})
        self._thread.start()

    # -- addresses -----------------------------------------------------------

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def discord_url(self, webhook_id: str = WEBHOOK_ID, token: str = WEBHOOK_TOKEN) -> str:
        """A webhook URL (registered unless you pass other parts)."""
        return f"{self.base}/api/webhooks/{webhook_id}/{token}"

    # -- controls ------------------------------------------------------------

    def fail(self, mode: str, times: int = 1) -> None:
        """The next ``times`` requests fail as ``mode``: "500", "503", "drop", "429",
        "unknown_webhook", "invalid_token", "401", "403", "chat_not_found"."""
        with self.lock:
            self._failures.extend([mode] * times)

    def reply(self, canned: Canned, times: int = 1) -> None:
        """The next ``times`` requests get ``canned`` (before any :meth:`fail`)."""
        with self.lock:
            self._canned.extend([canned] * times)

    def down(self, seconds: float) -> None:
        """Drop every connection for ``seconds``."""
        with self.lock:
            self._down_until = time.monotonic() + seconds

    def up(self) -> None:
        """End :meth:`down` now."""
        with self.lock:
            self._down_until = 0.0

    def bodies(self, service: str = "discord") -> list[dict[str, Any]]:
        """The bodies accepted for ``service``, in arrival order."""
        with self.lock:
            return [r.body for r in self.received if r.service == service]

    def close(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()

    def __enter__(self) -> FakeAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- request handling (called from handler threads) -------------------------

    def _next_canned(self) -> Canned | None:
        with self.lock:
            if not self._canned:
                return None
            self.requests += 1
            self.canned_sent += 1
            return self._canned.popleft()

    def _next_failure(self) -> str | None:
        with self.lock:
            self.requests += 1
            if time.monotonic() < self._down_until:
                return "drop"
            return self._failures.popleft() if self._failures else None

    def _take(self, service: str, key: str, windows: list[tuple[int, float]]
              ) -> tuple[bool, int, float, int]:
        now = time.monotonic()
        with self.lock:
            buckets = self._buckets.setdefault((service, key), [_Bucket(*w) for w in windows])
            results = [b.take(now) for b in buckets]
            ok = all(r[0] for r in results)
            if not ok:
                # a refused request must not count in the windows that allowed it
                for bucket, result in zip(buckets, results, strict=True):
                    if result[0]:
                        bucket.times.pop()
                self.rate_limited += 1
            remaining = min(r[1] for r in results)
            reset = max(r[2] for r in results)
            return ok, remaining, reset, buckets[0].limit

    def _record(self, service: str, target: str, body: dict[str, Any],
                query: dict[str, str]) -> None:
        with self.lock:
            self.received.append(Received(service, target, body, query, time.monotonic()))

    def _violation(self, text: str) -> None:
        with self.lock:
            self.violations.append(text)


_DISCORD_FAILURES: dict[str, tuple[int, dict[str, Any]]] = {
    "500": (500, {"message": "Internal Server Error", "code": 0}),
    "503": (503, {"message": "Service Unavailable", "code": 0}),
    "unknown_webhook": (404, {"message": "Unknown Webhook", "code": 10015}),
    "invalid_token": (401, {"message": "Invalid Webhook Token", "code": 50027}),
    "401": (401, {"message": "401: Unauthorized", "code": 0}),
    "403": (403, {"message": "Missing Access", "code": 50001}),
    "429": (429, {"message": "You are being rate limited.", "retry_after": 0.05,
                  "global": False}),
}

_TELEGRAM_FAILURES: dict[str, tuple[int, str]] = {
    "500": (500, "Internal Server Error"),
    "503": (503, "Service Unavailable"),
    "401": (401, "Unauthorized"),
    "403": (403, "Forbidden: bot was kicked from the supergroup chat"),
    "chat_not_found": (400, "Bad Request: chat not found"),
    "429": (429, "Too Many Requests: retry after 0.05"),
}

_WEBHOOK_PATH = re.compile(r"^/api/webhooks/([^/]+)/([^/]+)$")
_BOT_PATH = re.compile(r"^/bot([^/]+)/([A-Za-z]+)$")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def fake(self) -> FakeAPI:
        return self.server.fake  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests look at what was received, not at an access log."""

    def do_GET(self) -> None:
        """A webhook's own URL answers GET with the webhook (what ``logwatch init`` asks)."""
        if not (m := _WEBHOOK_PATH.match(urlsplit(self.path).path)):
            self._reply(404, {"message": "404: Not Found", "code": 0})
            return
        hook, token = m.group(1), m.group(2)
        if (hook, token) in self.fake.webhooks:
            self._reply(200, {"id": hook, "type": 1, "name": "fake hook", "token": token})
        elif any(h == hook for h, _ in self.fake.webhooks):
            self._reply(401, {"message": "Invalid Webhook Token", "code": 50027})
        else:
            self._reply(404, {"message": "Unknown Webhook", "code": 10015})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if (canned := self.fake._next_canned()) is not None:
            self._send_canned(canned)
            return
        failure = self.fake._next_failure()
        if failure == "drop":
            self.close_connection = True
            return
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if m := _WEBHOOK_PATH.match(parts.path):
            self._discord(m.group(1), m.group(2), body, query, failure)
        elif m := _BOT_PATH.match(parts.path):
            self._telegram(m.group(1), m.group(2), body, failure)
        else:
            self._reply(404, {"message": "404: Not Found", "code": 0})

    # -- Discord ---------------------------------------------------------------

    def _discord(self, hook: str, token: str, body: Any, query: dict[str, str],
                 failure: str | None) -> None:
        if failure is not None:
            status, answer = _DISCORD_FAILURES[failure]
            headers = {"Retry-After": "1"} if status == 429 else {}
            self._reply(status, answer, headers)
            return
        if (hook, token) not in self.fake.webhooks:
            known = any(h == hook for h, _ in self.fake.webhooks)
            self._reply(401 if known else 404, {"message": "Invalid Webhook Token", "code": 50027}
                        if known else {"message": "Unknown Webhook", "code": 10015})
            return
        problems = discord_payload_problems(body)
        if query.get("wait") != "true":
            problems.append("wait=true missing")
        if problems:
            self.fake._violation(f"discord: {problems}")
            self._reply(400, {"message": "Invalid Form Body", "code": 50035,
                              "errors": problems})
            return
        ok, remaining, reset, limit = self.fake._take("discord", hook, [self.fake.discord_window])
        headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining),
                   "X-RateLimit-Reset-After": f"{reset:.3f}", "X-RateLimit-Bucket": "fakebucket"}
        if not ok:
            headers["Retry-After"] = str(max(1, round(reset)))
            self._reply(429, {"message": "You are being rate limited.",
                              "retry_after": round(reset, 3), "global": False}, headers)
            return
        self.fake._record("discord", hook, body, query)
        self._reply(200, {"id": str(time.monotonic_ns()), "type": 0, "content": "",
                          "embeds": body.get("embeds", [])}, headers)

    # -- Telegram --------------------------------------------------------------

    def _telegram(self, token: str, method: str, body: Any, failure: str | None) -> None:
        if failure is not None:
            status, text = _TELEGRAM_FAILURES[failure]
            params = {"retry_after": 0.05} if status == 429 else None
            self._tg_error(status, text, params)
            return
        if token not in self.fake.bot_tokens:
            self._tg_error(401, "Unauthorized")
            return
        if method == "getUpdates":
            if self.fake.webhook_set:
                self._tg_error(409, "Conflict: can't use getUpdates method while webhook is "
                                    "active; use deleteWebhook to delete the webhook first")
            else:
                self._reply(200, {"ok": True, "result": self.fake.updates})
            return
        if method != "sendMessage" or not isinstance(body, dict):
            self._tg_error(404, "Not Found")
            return
        self._send_message(body)

    def _send_message(self, body: dict[str, Any]) -> None:
        chat = body.get("chat_id")
        if chat in self.fake.migrations:
            self._tg_error(400, "Bad Request: group chat was upgraded to a supergroup chat",
                           {"migrate_to_chat_id": self.fake.migrations[chat]})
            return
        if chat not in self.fake.chats:
            self._tg_error(400, "Bad Request: chat not found")
            return
        text = body.get("text") or ""
        problems = telegram_html_problems(text) if body.get("parse_mode") == "HTML" else []
        if utf16_len(text) > 4096:
            problems.append(f"text {utf16_len(text)} > 4096")
        if problems:
            self.fake._violation(f"telegram: {problems}")
            self._tg_error(400, f"Bad Request: can't parse entities: {problems[0]}")
            return
        windows = [self.fake.telegram_window]
        if str(chat).startswith("-"):
            windows.append(self.fake.telegram_group_window)
        ok, _, reset, _ = self.fake._take("telegram", str(chat), windows)
        if not ok:
            self._tg_error(429, f"Too Many Requests: retry after {reset:.3f}",
                           {"retry_after": round(reset, 3)})
            return
        self.fake._record("telegram", str(chat), body, {})
        self._reply(200, {"ok": True, "result": {"message_id": len(self.fake.received),
                                                 "chat": {"id": chat}, "text": text}})

    def _tg_error(self, status: int, description: str,
                  parameters: dict[str, Any] | None = None) -> None:
        answer: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            answer["parameters"] = parameters
        self._reply(status, answer)

    def _send_canned(self, canned: Canned) -> None:
        data = canned.data()
        self.send_response(canned.status)
        self.send_header("Content-Type", canned.content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in canned.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


def iter_embeds(fake: FakeAPI) -> Iterator[dict[str, Any]]:
    """Every embed Discord accepted, in order."""
    for body in fake.bodies("discord"):
        yield from body.get("embeds", [])


HOSTILE_LINE = ("Feb 25 14:34:10 web sshd[1]: Failed password for @everyone <@&123> **bold** "
                "<b>x</b> &amp; ``` __u__ ~~s~~ ||spoiler|| [link](http://evil.example) "
                "from 10.0.0.1" + " tail" * 2000)


def make_alert(n: int = 1, **changes: Any) -> Any:
    """Alert number ``n`` (its title is ``event n``), with ``changes`` applied."""
    from logwatch.models import Alert

    values: dict[str, Any] = {
        "id": f"alert-{n:06d}", "kind": "alert", "rule": "numbered", "severity": "warning",
        "title": f"event {n}", "message": f"something happened ({n})", "source": "app",
        "host": "web-1", "time": 1_700_000_000.0 + n, "line": f"ERROR event {n}",
        "fields": {"n": str(n)}, "to": ("hook",),
    }
    values.update(changes)
    return Alert(**values)


def hostile_alert(n: int = 1, **changes: Any) -> Any:
    """An alert whose every text is what an attacker would put in a log line."""
    return make_alert(n, title="@everyone <@&123> **bold** <b>x</b> &amp;",
                      message="user **root** from <@&123> @here &amp; <script>",
                      line=HOSTILE_LINE, fields={"user": "@everyone <b>x</b>", "ip": "`1.2`"},
                      **changes)
