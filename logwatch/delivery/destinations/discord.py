"""Discord webhooks: one embed per alert, up to 10 in a message, nothing that pings.

Limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits):
title 256, description 4096, field name 256 / value 1024, footer 2048, all embeds of
a message together 6000, content 2000. Log text is attacker-controlled: markdown is
escaped, the line goes in a code block that it cannot close, and every message says
``allowed_mentions: {"parse": []}``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import regex

import logwatch.delivery.destinations.replies as replies
from logwatch.config import DiscordDestination
from logwatch.delivery.destinations.http import Answer, Http, new_client
from logwatch.delivery.destinations.types import (
    Message,
    Outcome,
    Window,
    cut_sized,
    endpoint,
    message_text,
    post_json,
    response_reason,
    shown_line,
    utf16_len,
)
from logwatch.errors import DeliveryError
from logwatch.models import Alert

log = logging.getLogger(__name__)

TITLE_MAX = 256
DESCRIPTION_MAX = 4096
EMBEDS_TOTAL_MAX = 6000
MAX_EMBEDS = 10
#: our own caps, so that one embed always fits in the 6000 total
FIELDS_MAX = 8
FIELD_NAME_MAX = 64
FIELD_VALUE_MAX = 256
FOOTER_MAX = 200
MESSAGE_MAX = 1500
#: an empty bucket whose reset time is garbage: about Discord's usual window
BUCKET_PAUSE = 2.0

COLOURS: Mapping[str, int] = {"critical": 0xE74C3C, "warning": 0xF39C12, "info": 0x3498DB}
RESOLVED_COLOUR = 0x2ECC71

#: every character Discord markdown gives a meaning, and its escape; the backslash first, so
#: that the backslashes the others add are not escaped again
_MARKDOWN = tuple((ch, "\\" + ch) for ch in "\\*_~`|<>#-[]():@")
_FENCE = regex.compile(r"`(?=``)")

#: Discord's JSON error codes that mean "this webhook is gone or wrong"
_CODES: Mapping[int, str] = {
    10015: "unknown webhook: it was deleted or the URL is wrong",
    50027: "invalid webhook token: the URL is wrong or was regenerated",
}


def escape_markdown(text: str) -> str:
    """Backslash every character Discord markdown gives a meaning (mentions included).

    A ``str.replace`` per character the text holds (a C search, then a C copy): a
    ``str.translate`` table that maps to two characters takes its slow path, a dictionary
    look-up per character, from the first one it maps (11 us for a 150-character line
    against 1.5).
    """
    for char, escaped in _MARKDOWN:
        if char in text:
            text = text.replace(char, escaped)
    return text


def code_safe(text: str) -> str:
    """Text that cannot close a ``` code block (a zero-width space breaks every run of 3)."""
    return _FENCE.sub("`\u200b", text) if "```" in text else text


def _markdown_sized(text: str, budget: int) -> tuple[str, int]:
    """``cut_sized(text, budget, escape_markdown)``, the usual case (short, ASCII) in one pass:
    an embed has ten such texts or so, and a sender renders a few embeds per POST."""
    whole = escape_markdown(text)
    if len(whole) <= budget and whole.isascii():
        return whole, len(whole)
    return cut_sized(text, budget, escape_markdown)


#: field names as shown, by name: they are the rules' group names (and "count"), a few
#: dozen; short field values as shown (addresses, users: they repeat from alert to alert);
#: footers (a host, a rule and a severity), by text. Kept for every sender, each forgotten
#: all at once past :data:`TEXTS_KEPT`
_NAMES: dict[str, tuple[str, int]] = {}
_VALUES: dict[str, tuple[str, int]] = {}
_FOOTERS: dict[str, tuple[str, int]] = {}
TEXTS_KEPT = 512
#: a longer field value is made each time (what is kept stays a few hundred KiB at most)
VALUE_KEPT_MOST = 64


def _once(kept: dict[str, tuple[str, int]], text: str,
          make: Callable[[str, int], tuple[str, int]], budget: int) -> tuple[str, int]:
    """``make(text, budget)``, made once per text while ``kept`` holds it."""
    shown = kept.get(text)
    if shown is None:
        if len(kept) >= TEXTS_KEPT:
            kept.clear()
        shown = kept[text] = make(text, budget)
    return shown


def _field_name(name: str) -> tuple[str, int]:
    """:func:`_markdown_sized` of a field name, made once per name."""
    return _once(_NAMES, name, _markdown_sized, FIELD_NAME_MAX)


def _field_value(value: str) -> tuple[str, int]:
    """:func:`_markdown_sized` of a field value, made once per short value."""
    if len(value) > VALUE_KEPT_MOST:
        return _markdown_sized(value, FIELD_VALUE_MAX)
    return _once(_VALUES, value, _markdown_sized, FIELD_VALUE_MAX)


def _footer(alert: Alert) -> tuple[str, int]:
    """The footer's text and size (plain text: footers do not render markdown), made once
    per footer that needs no cut."""
    text = f"{alert.host} · {alert.rule} · {alert.severity}"
    if len(text) > FOOTER_MAX:
        return cut_sized(text, FOOTER_MAX)
    return _once(_FOOTERS, text, cut_sized, FOOTER_MAX)


#: the seconds of years 1000 to 9999, which ``strftime`` writes as ``isoformat`` does (four
#: digits); :func:`timestamp` leaves the others to ``datetime``
_FOUR_DIGIT_YEARS = (-30_610_224_000.0, 253_402_300_800.0)
#: the last whole second :func:`timestamp` wrote, and its text (one tuple: any thread)
_SECOND: tuple[int, str] = (0, "1970-01-01T00:00:00")


def timestamp(when: float) -> str:
    """``datetime.fromtimestamp(when, UTC).isoformat()``, the same text at half the cost: the
    microseconds rounded as it rounds them (half to even), the second's text made once for
    the alerts of that second (a message's mostly share it)."""
    global _SECOND  # noqa: PLW0603 - a cache of one entry, replaced whole
    try:
        fraction, whole = math.modf(when)
        micro = round(fraction * 1e6)
        if micro >= 1_000_000:
            micro, whole = micro - 1_000_000, whole + 1.0
        elif micro < 0:
            micro, whole = micro + 1_000_000, whole - 1.0
        if not _FOUR_DIGIT_YEARS[0] <= whole < _FOUR_DIGIT_YEARS[1]:
            raise ValueError("a year strftime writes otherwise")
        second, text = _SECOND
        if second != int(whole):
            second = int(whole)
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            _SECOND = (second, text)
    except (ArithmeticError, ValueError, OSError):
        return dt.datetime.fromtimestamp(when, dt.UTC).isoformat()  # raises as it did
    return f"{text}.{micro:06d}+00:00" if micro else f"{text}+00:00"


def render_embed(alert: Alert) -> dict[str, Any]:
    """The embed for one alert, within Discord's limits whatever the text."""
    return _sized_embed(alert)[0]


def _sized_embed(alert: Alert) -> tuple[dict[str, Any], int]:
    """:func:`render_embed` and its :func:`embed_size`, each part measured once as it is cut."""
    title, size = _markdown_sized(alert.title, TITLE_MAX)
    footer, footer_size = _footer(alert)
    embed: dict[str, Any] = {
        "title": title,
        "color": RESOLVED_COLOUR if alert.kind == "resolved" else COLOURS.get(alert.severity,
                                                                               0x95A5A6),
        "timestamp": timestamp(alert.time),
        "footer": {"text": footer},
    }
    size += footer_size
    fields, fields_size = _fields(alert)
    if fields:
        embed["fields"] = fields
    size += fields_size
    description, description_size = _description(alert, min(DESCRIPTION_MAX,
                                                             EMBEDS_TOTAL_MAX - size))
    if description:  # Discord refuses an empty description
        embed["description"] = description
    return embed, size + description_size


def _fields(alert: Alert) -> tuple[list[dict[str, Any]], int]:
    """The fields and their size."""
    items = [(k, v) for k, v in alert.fields.items() if v]
    if alert.count > 1:
        items.insert(0, ("count", str(alert.count)))
    fields, size = [], 0
    for name, value in items[:FIELDS_MAX]:
        shown_name, name_size = _field_name(name)
        shown_value, value_size = _field_value(value)
        fields.append({"name": shown_name, "value": shown_value, "inline": True})
        size += name_size + value_size
    return fields, size


#: what wraps the line in a description: a code block on lines of its own
_FENCES = ("\n```\n", "\n```")
_FENCES_SIZE = len("".join(_FENCES))


def _description(alert: Alert, room: int) -> tuple[str, int]:
    """The description and its size."""
    message, size = _markdown_sized(message_text(alert), min(MESSAGE_MAX, room))
    left = room - size - _FENCES_SIZE
    if not alert.line or left < 40:
        return message, size
    line, line_size = cut_sized(shown_line(alert), left, code_safe)
    text = f"{message}{_FENCES[0]}{line}{_FENCES[1]}"
    shown = text.lstrip("\n")
    # what lstrip took is newlines, one UTF-16 unit each
    return shown, size + _FENCES_SIZE + line_size - (len(text) - len(shown))


def embed_size(embed: Mapping[str, Any]) -> int:
    """What counts towards the 6000-character total of a message's embeds."""
    size = utf16_len(embed.get("title", "")) + utf16_len(embed.get("description", ""))
    size += utf16_len(embed.get("footer", {}).get("text", ""))
    for item in embed.get("fields", ()):
        size += utf16_len(item["name"]) + utf16_len(item["value"])
    return size


class Discord:
    """A Discord webhook (``DiscordDestination``)."""

    kind = "discord"
    posts = True
    max_batch = MAX_EMBEDS

    def __init__(self, config: DiscordDestination, *, pace: tuple[Window, ...] | None = None,
                 timeout: float | None = None) -> None:
        self.name = config.name
        self.config = config
        #: Discord allows about 5 requests per 2 s per webhook
        self.pace = pace or (Window(5, 2.0),)
        self._timeout = timeout
        self._client: Http | None = None
        self._url: httpx.URL | None = None
        #: the embeds of the alerts last rendered, by alert id, with the alert they are of: the
        #: one that did not fit goes first in the next message, a retry sends them all again
        self._embeds: dict[str, tuple[Alert, dict[str, Any], int]] = {}

    def __repr__(self) -> str:
        return f"Discord(name={self.name!r})"

    def render(self, alerts: Sequence[Alert]) -> Message:
        """Embeds for as many alerts as fit (10 embeds, 6000 characters)."""
        embeds: list[dict[str, Any]] = []
        total = 0
        last, self._embeds = self._embeds, {}
        for alert in alerts[:MAX_EMBEDS]:
            embed, size = self._embed(alert, last)
            if embeds and total + size > EMBEDS_TOTAL_MAX:
                break
            embeds.append(embed)
            total += size
        payload: dict[str, Any] = {"embeds": embeds, "allowed_mentions": {"parse": []}}
        if self.config.username:
            payload["username"] = self.config.username[:80]
        return Message(len(embeds), payload)  # the preview (dry run) is the payload

    def _embed(self, alert: Alert, last: Mapping[str, tuple[Alert, dict[str, Any], int]]
               ) -> tuple[dict[str, Any], int]:
        """:func:`_sized_embed` of ``alert``, made again only if the last render did not make
        it (an embed is never changed once made: the same one may go in two messages)."""
        made = last.get(alert.id)
        if made is None or made[0] is not alert:
            made = (alert, *_sized_embed(alert))
        self._embeds[alert.id] = made
        return made[1], made[2]

    def send(self, message: Message) -> Outcome:
        """POST with ``?wait=true`` so a 200 means Discord stored the message."""
        try:
            resp = post_json(self._http(), self._endpoint(), message.payload,
                             secret=self.config.url)
        except DeliveryError as exc:
            return Outcome("backoff", str(exc))
        return classify(resp, self.config)

    def restore(self, saved: Mapping[str, Any]) -> None:
        """Nothing to restore for a webhook."""

    def redact(self, text: str) -> str:
        """``text`` with the webhook URL masked in every encoding."""
        return self.config.url.redact(text)

    def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _endpoint(self) -> httpx.URL:
        """The webhook URL with its query, parsed at the first send only."""
        if self._url is None:
            params = {"wait": "true"}
            if self.config.thread_id is not None:
                params["thread_id"] = str(self.config.thread_id)
            self._url = endpoint(self.config.url, params)
        return self._url

    def _http(self) -> Http:
        if self._client is None:
            self._client = new_client() if self._timeout is None else new_client(self._timeout)
        return self._client


def classify(resp: Answer, config: DiscordDestination) -> Outcome:
    """Turn Discord's answer into an :class:`Outcome`."""
    status = resp.status_code
    pause = _bucket_pause(resp.headers)
    if 200 <= status < 300:
        return Outcome("ok", pause=pause)
    reason = response_reason(resp, config.url, "Discord")
    if status == 429:
        return Outcome("retry", f"rate limited ({reason})", retry_after=_retry_after(resp),
                       pause=pause)
    if status in (401, 403, 404):
        return Outcome("permanent", _permanent_reason(resp, reason))
    if status in (400, 413):
        if _is_discord_error(resp):
            return Outcome("reject", f"Discord rejected the message ({reason})")
        # a proxy's or a broken connection's 400 says nothing about the message
        return Outcome("backoff", f"{reason}, not Discord's own error: retrying")
    return Outcome("backoff", reason)


def _is_discord_error(resp: Answer) -> bool:
    """Discord's own JSON error: ``{"code": 50035, "message": "Invalid Form Body", ...}``."""
    data = replies.json_object(resp)
    code, message = data.get("code"), data.get("message")
    return isinstance(code, int) and not isinstance(code, bool) and isinstance(message, str)


def _permanent_reason(resp: Answer, reason: str) -> str:
    code = _json_field(resp, "code")
    if isinstance(code, int) and code in _CODES:
        return f"{_CODES[code]} ({reason})"
    if resp.status_code == 404:
        return f"unknown webhook: the URL is wrong or the webhook was deleted ({reason})"
    return f"the webhook refused us, check the URL ({reason})"


def _retry_after(resp: Answer) -> float:
    """The body's ``retry_after``, else the headers', else a default; always finite, capped."""
    for found in (replies.seconds(_json_field(resp, "retry_after")),
                  replies.retry_after_header(resp.headers),
                  replies.seconds(resp.headers.get("X-RateLimit-Reset-After"))):
        if found is not None:
            return found
    return replies.DEFAULT_WAIT


def _bucket_pause(headers: Mapping[str, str]) -> float | None:
    """``X-RateLimit-Remaining: 0``: wait ``X-RateLimit-Reset-After`` before the next request."""
    remaining = replies.seconds(headers.get("X-RateLimit-Remaining", "1"))
    if remaining is None or remaining > 0:
        return None
    return replies.wait(headers.get("X-RateLimit-Reset-After"), default=BUCKET_PAUSE)


def _json_field(resp: Answer, key: str) -> Any:
    return replies.json_object(resp).get(key)
