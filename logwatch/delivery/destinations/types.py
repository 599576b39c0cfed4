"""What every destination is: the :class:`Destination` protocol and the values it trades.

A destination turns a batch of alerts into one :class:`Message` (``render``), sends it
(``send``) and says what happened as an :class:`Outcome`; the sender in
:mod:`logwatch.delivery.sender` does the ordering, pacing, retries and bookkeeping.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import httpx

import logwatch.delivery.destinations.replies as replies
from logwatch.delivery.destinations.http import Answer, Http
from logwatch.errors import DeliveryError
from logwatch.models import Alert
from logwatch.secret import Secret
from logwatch.state import one_shot_encoder

# httpx and httpcore log every request at INFO/DEBUG with the full URL, which holds the
# webhook token or the bot token: keep them quiet whatever the root logger says.
for _noisy in ("httpx", "httpcore"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)

#: ok: delivered. retry: wait ``retry_after`` (a 429), not a failure. backoff: the
#: service or network failed, try again later. reject: this message can never be
#: accepted (dead rows), the destination is fine. permanent: the destination itself is
#: unusable (bad token, unknown webhook, chat not found): dead rows, destination failing.
Verdict = Literal["ok", "retry", "backoff", "reject", "permanent"]

CUT_MARKER = "… [cut]"
#: the body as httpx's ``json=`` encodes it (compact UTF-8, no NaN), with one C encoder made
#: once (a payload is ours: no cycle check)
_JSON = one_shot_encoder(json.JSONEncoder(ensure_ascii=False, separators=(",", ":"),
                                          allow_nan=False, check_circular=False))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a send attempt came to; ``reason`` is one redacted line."""

    verdict: Verdict
    reason: str = ""
    retry_after: float | None = None
    #: the rate-limit bucket is empty: wait this long before the next request
    pause: float | None = None
    #: destination state to keep across restarts (Telegram's migrated chat id)
    remember: Mapping[str, Any] | None = None

    def clamped(self, cap: float) -> Outcome:
        """This outcome with its waits finite and within ``[0, cap]`` s (whoever made it)."""
        retry = None if self.retry_after is None else replies.wait(self.retry_after, cap=cap)
        pause = None if self.pause is None else replies.seconds(self.pause, cap=cap)
        if (retry, pause) == (self.retry_after, self.pause):
            return self
        return replace(self, retry_after=retry, pause=pause)


@dataclass(frozen=True, slots=True)
class Message:
    """One request's worth of alerts: the first ``count`` of the batch given to ``render``."""

    count: int
    payload: Any
    #: what a dry run prints, never the URL or token; None: the payload as indented JSON
    shown: str | None = None

    @property
    def preview(self) -> str:
        """What a dry run prints; made when asked, as only a dry run shows it."""
        if self.shown is not None:
            return self.shown
        return json.dumps(self.payload, ensure_ascii=False, indent=2)


@dataclass(frozen=True, slots=True)
class Window:
    """At most ``limit`` requests in any ``per`` seconds."""

    limit: int
    per: float


class Destination(Protocol):
    """A place alerts go to (a webhook, a bot's chat, the terminal)."""

    name: str
    kind: str
    #: False when "sending" posts nothing anywhere (the console): a dry run still sends
    posts: bool
    max_batch: int
    pace: tuple[Window, ...]

    def render(self, alerts: Sequence[Alert]) -> Message:
        """Render as many of ``alerts`` (at least one) as fit in one request."""

    def send(self, message: Message) -> Outcome:
        """Post ``message`` once; never raises for network or service errors."""

    def restore(self, saved: Mapping[str, Any]) -> None:
        """Take back what an earlier :attr:`Outcome.remember` stored."""

    def redact(self, text: str) -> str:
        """``text`` with this destination's secrets masked in every encoding."""

    def close(self) -> None:
        """Release the HTTP client."""


def message_text(alert: Alert) -> str:
    """The alert's message without the line it ends with: every destination shows the line
    on its own (a code block, ``<pre>``, ``>``), so ``{line}`` in a message would show it twice.
    A CRLF log's carriage returns are dropped."""
    message, line = alert.message.replace("\r", "").rstrip(), shown_line(alert).strip()
    if line and message.endswith(line):
        message = message[: -len(line)].rstrip()
    return message


def shown_line(alert: Alert) -> str:
    """The log line as destinations show it: without a CRLF log's carriage returns."""
    return alert.line.replace("\r", "")


def utf16_len(text: str) -> int:
    """Length as Discord and Telegram count it (UTF-16 code units)."""
    if text.isascii():
        return len(text)
    # a lone surrogate (undecodable log bytes) is one unit, as an astral character is two
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def cut(text: str, budget: int, escape: Callable[[str], str] = lambda s: s,
        marker: str = CUT_MARKER) -> str:
    """``escape(text)`` in at most ``budget`` UTF-16 units, cut on a line boundary with a marker.

    The cut is made in the raw text, so an escape sequence (``&amp;``, ``\\*``) is
    never split; a single over-long line is cut mid-line.
    """
    return cut_sized(text, budget, escape, marker)[0]


def cut_sized(text: str, budget: int, escape: Callable[[str], str] = lambda s: s,
              marker: str = CUT_MARKER) -> tuple[str, int]:
    """:func:`cut`, and the UTF-16 length of what it returns (measured once)."""
    whole = escape(text)
    size = utf16_len(whole)
    if size <= budget:
        return whole, size
    kept = _cut_long(text, budget, escape, marker)
    return kept, utf16_len(kept)


def _cut_long(text: str, budget: int, escape: Callable[[str], str], marker: str) -> str:
    """:func:`cut` of a text that does not fit whole."""
    room = budget - utf16_len(marker) - 1
    used, end, last_newline = 0, 0, -1
    for i, ch in enumerate(text):
        cost = utf16_len(escape(ch))
        if used + cost > room:
            break
        used += cost
        end = i + 1
        if ch == "\n":
            last_newline = i
    # prefer a line boundary unless it would throw away most of what fits
    if last_newline >= end // 2:
        end = last_newline
    kept = escape(text[:end]).rstrip("\n")
    while utf16_len(kept) > room:
        # an escape that depends on context (a run of backticks) made the prefix longer
        end -= utf16_len(kept) - room
        kept = escape(text[:end]).rstrip("\n")
    return f"{kept}\n{marker}" if kept else marker


def endpoint(url: Secret | str, params: Mapping[str, str] | None = None) -> httpx.URL:
    """``url`` parsed once, ``params`` replacing its query as ``client.post(params=)`` does.

    It holds the secret (webhook token, bot token): keep it private, never show it.
    """
    target = url.reveal() if isinstance(url, Secret) else url
    return httpx.URL(target) if params is None else httpx.URL(target, params=params)


def post_json(http: Http, url: httpx.URL | Secret | str, body: Any, *,
              secret: Secret) -> Answer:
    """POST ``body``; network trouble becomes a :class:`DeliveryError` without the URL.

    A sender passes an :func:`endpoint` made once, so that a send parses no URL.
    """
    target = url if isinstance(url, httpx.URL) else endpoint(url)
    content = _JSON(body).encode()
    # ``from None``: the httpx exception holds the request, URL and token included, and
    # a traceback printed anywhere would show it
    try:
        return http.post(target, content)
    except httpx.TimeoutException:
        raise DeliveryError(f"network: timed out talking to {_host(target)}") from None
    except httpx.HTTPError as exc:
        reason = _network_reason(exc, secret)
    raise DeliveryError(f"network: {_host(target)}: {reason}") from None


def _host(parsed: httpx.URL) -> str:
    return f"{parsed.host}:{parsed.port}" if parsed.port else parsed.host


def _network_reason(exc: httpx.HTTPError, secret: Secret) -> str:
    if isinstance(exc, httpx.ConnectError):
        what = "cannot connect"
    elif isinstance(exc, httpx.RemoteProtocolError):
        what = "the connection was dropped"
    else:
        what = type(exc).__name__
    detail = secret.redact(str(exc)).splitlines()[0][:200] if str(exc) else ""
    # httpx messages are mostly OS errors, but a URL can appear in some; drop any that might
    if "://" in detail or "/bot" in detail:
        detail = ""
    return f"{what} ({detail})" if detail else what


def response_reason(resp: Answer, secret: Secret, service: str) -> str:
    """``"Discord answered 503"`` plus the service's own message, one redacted line."""
    data = replies.json_object(resp)
    text = str(data.get("message") or data.get("description") or "")[:4000]
    text = secret.redact(" ".join(text.split()))[:200]
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    if not data:
        kind = "".join(ch for ch in resp.headers.get("Content-Type", "no body").split(";")[0]
                       if ch.isprintable())[:40]
        text = f"not JSON ({kind})"
    return f"{service} answered {resp.status_code}" + (f": {text}" if text else "")
