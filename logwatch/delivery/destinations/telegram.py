"""Telegram bots: ``sendMessage`` in HTML parse mode, every piece of log text escaped.

A message holds at most 4096 characters; when alerts queue up several go in one
message. A group upgraded to a supergroup answers 400 with ``migrate_to_chat_id``:
the message is sent again to the new chat, which is remembered.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

import logwatch.delivery.destinations.replies as replies
from logwatch.config import TelegramDestination
from logwatch.delivery.destinations.http import Answer, Http, new_client
from logwatch.delivery.destinations.types import (
    Message,
    Outcome,
    Verdict,
    Window,
    cut,
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

TEXT_MAX = 4096
MAX_BATCH = 20
TITLE_MAX = 256
MESSAGE_MAX = 1024
FIELDS_MAX = 8
FIELD_MAX = 128
SEPARATOR = "\n\n"

ICONS: Mapping[str, str] = {"critical": "\U0001f534", "warning": "\U0001f7e0", "info": "\U0001f535"}
RESOLVED_ICON = "\u2705"


def escape(text: str) -> str:
    """HTML-escape ``<``, ``>`` and ``&`` (the three Telegram requires; quotes are plain)."""
    return html.escape(text, quote=False)


def render_alert(alert: Alert, budget: int = TEXT_MAX) -> str:
    """One alert as Telegram HTML, at most ``budget`` characters."""
    icon = RESOLVED_ICON if alert.kind == "resolved" else ICONS.get(alert.severity, "")
    head = f"{icon} <b>{cut(alert.title, TITLE_MAX, escape)}</b>"
    parts = [head]
    if message := message_text(alert):
        parts.append(cut(message, MESSAGE_MAX, escape))
    fields = [(k, v) for k, v in alert.fields.items() if v]
    if alert.count > 1:
        fields.insert(0, ("count", str(alert.count)))
    parts.extend(f"<b>{cut(k, 64, escape)}</b>: {cut(v, FIELD_MAX, escape)}"
                 for k, v in fields[:FIELDS_MAX])
    foot = f"<i>{cut(f'{alert.host} · {alert.rule}', 200, escape)}</i>"
    text = "\n".join(parts)
    if alert.line:
        room = budget - utf16_len(text) - utf16_len(foot) - len("\n<pre></pre>\n")
        if room >= 40:
            text += f"\n<pre>{cut(shown_line(alert), room, escape)}</pre>"
    text += f"\n{foot}"
    if utf16_len(text) > budget:
        # only when the caller's budget is tiny: keep the head, which is what matters most
        text = cut(alert.title, budget - 8, escape)
    return text


@dataclass(frozen=True, slots=True)
class Chat:
    """A chat the bot has seen (from ``getUpdates``)."""

    id: int
    type: str
    title: str


class Telegram:
    """A Telegram bot posting to one chat (``TelegramDestination``)."""

    kind = "telegram"
    posts = True
    max_batch = MAX_BATCH

    def __init__(self, config: TelegramDestination, *, pace: tuple[Window, ...] | None = None,
                 timeout: float | None = None) -> None:
        self.name = config.name
        self.config = config
        self.chat_id: int | str = config.chat_id
        self.pace = pace or _default_pace(config.chat_id)
        self._timeout = timeout
        self._client: Http | None = None
        self._url: httpx.URL | None = None

    def __repr__(self) -> str:
        return f"Telegram(name={self.name!r}, chat_id={self.chat_id!r})"

    def render(self, alerts: Sequence[Alert]) -> Message:
        """Several alerts in one text when they fit in 4096 characters."""
        texts = [render_alert(alerts[0])]
        used = utf16_len(texts[0])
        for alert in alerts[1:MAX_BATCH]:
            text = render_alert(alert)
            size = len(SEPARATOR) + utf16_len(text)
            if used + size > TEXT_MAX:
                break
            texts.append(text)
            used += size
        quiet = all(a.severity == "info" for a in alerts[:len(texts)])
        text = SEPARATOR.join(texts)
        # the preview (--dry-run) ends its last line, so the next header starts a line
        return Message(len(texts), {"text": text, "disable_notification": quiet}, text + "\n")

    def send(self, message: Message) -> Outcome:
        """sendMessage; follows one group -> supergroup migration."""
        outcome = self._send_once(message)
        if outcome.remember is not None and outcome.verdict == "retry":
            again = self._send_once(message)
            return Outcome(again.verdict, again.reason, again.retry_after, again.pause,
                           outcome.remember)
        return outcome

    def restore(self, saved: Mapping[str, Any]) -> None:
        """Use a migrated chat id, if it was learnt for the chat id still configured."""
        migrated = replies.chat_id(saved.get("migrated_chat_id"))
        if saved.get("migrated_from") == self.config.chat_id and migrated is not None:
            self.chat_id = migrated

    def redact(self, text: str) -> str:
        """``text`` with the bot token masked in every encoding."""
        return self.config.token.redact(text)

    def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _send_once(self, message: Message) -> Outcome:
        body: dict[str, Any] = {
            "chat_id": self.chat_id,
            "text": message.payload["text"],
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
            "disable_notification": message.payload["disable_notification"],
        }
        if self.config.thread_id is not None:
            body["message_thread_id"] = self.config.thread_id
        try:
            resp = post_json(self._http(), self._endpoint(), body, secret=self.config.token)
        except DeliveryError as exc:
            return Outcome("backoff", str(exc))
        return self._classify(resp)

    def _classify(self, resp: Answer) -> Outcome:
        data = _json(resp)
        status = resp.status_code
        if status == 200 and data.get("ok"):
            return Outcome("ok")
        params = replies.mapping(data.get("parameters"))
        reason = response_reason(resp, self.config.token, "Telegram")
        if status == 429:
            wait = replies.seconds(params.get("retry_after"))
            if wait is None:
                wait = replies.retry_after_header(resp.headers)
            return Outcome("retry", f"rate limited ({reason})",
                           retry_after=replies.DEFAULT_WAIT if wait is None else wait)
        if "migrate_to_chat_id" in params and _is_telegram_error(data):
            return self._migrate(params["migrate_to_chat_id"], reason)
        return _failure(status, data, reason, self.name)

    def _migrate(self, raw_id: Any, reason: str) -> Outcome:
        new_id = replies.chat_id(raw_id)
        if new_id is None:
            return Outcome("backoff", "Telegram says the group became a supergroup but gives "
                           f"no valid migrate_to_chat_id ({reason}); retrying")
        old, self.chat_id = self.chat_id, new_id
        log.warning('destination "%s": the group %s was upgraded to a supergroup; sending to '
                    "chat_id %s from now on: set chat_id = %s in the config", self.name, old,
                    self.chat_id, self.chat_id)
        return Outcome("retry", "group upgraded to a supergroup", retry_after=0.0,
                       remember={"migrated_from": self.config.chat_id,
                                 "migrated_chat_id": self.chat_id})

    def _endpoint(self) -> httpx.URL:
        """sendMessage's URL, parsed at the first send only."""
        if self._url is None:
            self._url = endpoint(api_url(self.config, "sendMessage"))
        return self._url

    def _http(self) -> Http:
        if self._client is None:
            self._client = new_client() if self._timeout is None else new_client(self._timeout)
        return self._client


#: (status, words in the description) -> what it means; first match wins
_FAILURES: tuple[tuple[int, str, Verdict, str], ...] = (
    (400, "chat not found", "permanent",
     "chat not found: check chat_id (`logwatch telegram-chats {name}` lists the bot's chats)"),
    (400, "thread not found", "permanent", "message thread not found: check thread_id"),
    (401, "", "permanent", "bad token: Telegram does not know this bot"),
    (403, "", "permanent", "the bot may not post there: was it removed from the chat or blocked?"),
    (404, "", "permanent", "bad token or api_url: no such bot"),
    (400, "", "reject", "Telegram rejected the message"),
)


def _is_telegram_error(data: Mapping[str, Any]) -> bool:
    """Telegram's own JSON error: ``{"ok": false, "error_code": 400, "description": ...}``."""
    code = data.get("error_code")
    return (data.get("ok") is False and isinstance(code, int) and not isinstance(code, bool)
            and isinstance(data.get("description"), str))


def _failure(status: int, data: Mapping[str, Any], reason: str, name: str) -> Outcome:
    if status == 400 and not _is_telegram_error(data):
        # a proxy's or a broken connection's 400 says nothing about the message
        return Outcome("backoff", f"{reason}, not Telegram's own error: retrying")
    description = str(data.get("description", "")).lower()
    for code, words, verdict, text in _FAILURES:
        if status == code and words in description:
            return Outcome(verdict, f"{text.format(name=name)} ({reason})")
    return Outcome("backoff", reason)


def _default_pace(chat_id: int | str) -> tuple[Window, ...]:
    """1 message/s per chat; groups (negative ids) also 20 per minute."""
    group = str(chat_id).startswith("-")
    return (Window(1, 1.0), Window(20, 60.0)) if group else (Window(1, 1.0),)


def api_url(config: TelegramDestination, method: str) -> str:
    """``{api_url}/bot{token}/{method}``: it holds the token, never print it."""
    return f"{config.api_url}/bot{config.token.reveal()}/{method}"


def _json(resp: Answer) -> dict[str, Any]:
    return replies.json_object(resp)


def list_chats(dest: TelegramDestination, *, timeout: float = 15.0) -> list[Chat]:
    """Every chat in the bot's pending updates (``getUpdates``), to find ``chat_id``."""
    with new_client(timeout) as client:
        try:
            resp = post_json(client, api_url(dest, "getUpdates"), {"timeout": 0},
                             secret=dest.token)
        except DeliveryError as exc:
            raise DeliveryError(f'destination "{dest.name}": {exc}') from None
    data = _json(resp)
    if resp.status_code == 200 and data.get("ok"):
        result = data.get("result")
        if not isinstance(result, list):
            raise DeliveryError(f'destination "{dest.name}": getUpdates answered an unexpected '
                                f"result (a {type(result).__name__}, not a list of updates)")
        return _chats(result)
    reason = response_reason(resp, dest.token, "Telegram")
    if resp.status_code == 409:
        raise DeliveryError(
            f'destination "{dest.name}": a webhook is set for this bot, so getUpdates is '
            f"unavailable ({reason}). Remove it (Bot API deleteWebhook), or read the chat id "
            "from the updates your webhook receives.", permanent=True)
    outcome = _failure(resp.status_code, data, reason, dest.name)
    raise DeliveryError(f'destination "{dest.name}": {outcome.reason}',
                        permanent=outcome.verdict == "permanent")


_UPDATE_KINDS = ("message", "edited_message", "channel_post", "edited_channel_post",
                 "my_chat_member", "chat_member", "chat_join_request")


def _chats(updates: list[Any]) -> list[Chat]:
    seen: dict[int, Chat] = {}
    for update in updates:
        if not isinstance(update, dict):
            continue
        for kind in _UPDATE_KINDS:
            chat = replies.mapping(replies.mapping(update.get(kind)).get("chat"))
            chat_id = chat.get("id")
            if isinstance(chat_id, int) and replies.chat_id(chat_id) is not None:
                seen[chat_id] = Chat(chat_id, _printable(str(chat.get("type", "?"))),
                                     _printable(_chat_title(chat)))
    return list(seen.values())


def _chat_title(chat: Mapping[str, Any]) -> str:
    if chat.get("title"):
        return str(chat["title"])
    name = " ".join(str(chat[k]) for k in ("first_name", "last_name") if chat.get(k))
    if chat.get("username"):
        name = f"{name} (@{chat['username']})".strip()
    return name or "(no title)"


def _printable(text: str) -> str:
    """Titles are other people's text: no terminal escapes."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:100]
