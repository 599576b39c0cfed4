"""Telegram: HTML-escaped rendering within 4096, batching, migration, getUpdates."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from logwatch.config import TelegramDestination
from logwatch.delivery.destinations.telegram import Telegram, list_chats, render_alert
from logwatch.delivery.destinations.types import CUT_MARKER, Window
from logwatch.errors import DeliveryError
from logwatch.secret import Secret
from tests.fakeapi import (
    BOT_TOKEN,
    CHAT_ID,
    FakeAPI,
    hostile_alert,
    make_alert,
    telegram_html_problems,
)


def telegram(api_url: str = "https://api.telegram.example", chat_id: int | str = CHAT_ID,
             token: str = BOT_TOKEN, **options: Any) -> Telegram:
    """A Telegram destination named "ops" with a fast pace."""
    config = TelegramDestination("ops", Secret(token), chat_id, api_url=api_url, **options)
    return Telegram(config, pace=(Window(1, 0.05),))


def test_hostile_text_is_escaped_and_within_limits() -> None:
    """Every piece of log text is HTML-escaped; the 10,000-character tail is cut and marked."""
    message = telegram().render([hostile_alert()])
    text = message.payload["text"]
    assert telegram_html_problems(text) == []
    assert len(text) <= 4096
    assert "&lt;b&gt;x&lt;/b&gt;" in text
    assert "&amp;amp;" in text
    assert "<script>" not in text
    assert CUT_MARKER in text


def test_html_escape_cannot_be_split_by_the_cut() -> None:
    """A line of ampersands cut at any length still parses."""
    for budget in range(100, 160):
        text = render_alert(make_alert(line="&" * 5000), budget=budget + 200)
        assert telegram_html_problems(text) == [], budget


def test_several_alerts_share_one_message() -> None:
    """Queued alerts are batched while they fit in 4096 characters."""
    dest = telegram()
    small = dest.render([make_alert(n) for n in range(30)])
    assert small.count == 20
    assert all(f"event {n}" in small.payload["text"] for n in range(20))
    big = dest.render([hostile_alert(n) for n in range(3)])
    assert big.count == 1
    assert len(big.payload["text"]) <= 4096


def test_info_is_silent_and_warnings_notify() -> None:
    """disable_notification only when every alert of the message is info."""
    dest = telegram()
    assert dest.render([make_alert(severity="info")]).payload["disable_notification"] is True
    both = [make_alert(1, severity="info"), make_alert(2)]
    assert dest.render(both).payload["disable_notification"] is False


def test_request_body_against_the_fake(fakeapi: FakeAPI) -> None:
    """chat_id, HTML parse mode, no link previews, and the forum topic reach the server."""
    dest = telegram(fakeapi.base, thread_id=7)
    try:
        outcome = dest.send(dest.render([hostile_alert()]))
    finally:
        dest.close()
    assert outcome.verdict == "ok", outcome.reason
    (body,) = fakeapi.bodies("telegram")
    assert body["chat_id"] == CHAT_ID
    assert body["parse_mode"] == "HTML"
    assert body["link_preview_options"] == {"is_disabled": True}
    assert body["message_thread_id"] == 7
    assert fakeapi.violations == []


def test_group_migrated_to_supergroup_is_followed(fakeapi: FakeAPI) -> None:
    """400 migrate_to_chat_id: resent to the new chat, which is returned to be remembered."""
    fakeapi.chats = {-100777}
    fakeapi.migrations = {-555: -100777}
    dest = telegram(fakeapi.base, chat_id=-555)
    try:
        outcome = dest.send(dest.render([make_alert()]))
    finally:
        dest.close()
    assert outcome.verdict == "ok"
    assert outcome.remember == {"migrated_from": -555, "migrated_chat_id": -100777}
    assert [r.target for r in fakeapi.received] == ["-100777"]
    again = telegram(fakeapi.base, chat_id=-555)
    again.restore(outcome.remember)
    assert again.chat_id == -100777


@pytest.mark.parametrize(
    ("mode", "verdict", "words"),
    [
        ("401", "permanent", "bad token"),
        ("403", "permanent", "removed from the chat"),
        ("chat_not_found", "permanent", "chat not found"),
        ("429", "retry", "429"),
        ("500", "backoff", "500"),
        ("drop", "backoff", "network"),
    ],
)
def test_failures_against_the_fake(fakeapi: FakeAPI, mode: str, verdict: str,
                                   words: str) -> None:
    """Each way Telegram fails maps to the right verdict, and the token is never in it."""
    fakeapi.fail(mode)
    dest = telegram(fakeapi.base)
    try:
        outcome = dest.send(dest.render([make_alert()]))
    finally:
        dest.close()
    assert outcome.verdict == verdict
    assert words in outcome.reason
    assert BOT_TOKEN not in outcome.reason


def _config(fake: FakeAPI, token: str = BOT_TOKEN) -> TelegramDestination:
    return TelegramDestination("ops", Secret(token), CHAT_ID, api_url=fake.base)


def test_list_chats(fakeapi: FakeAPI) -> None:
    """getUpdates: every chat once, groups by title, private chats by name."""
    fakeapi.updates = [
        {"update_id": 1, "message": {"chat": {"id": -100, "type": "supergroup",
                                              "title": "Ops \x1b[31m"}}},
        {"update_id": 2, "message": {"chat": {"id": 5, "type": "private",
                                              "first_name": "Ann", "username": "ann"}}},
        {"update_id": 3, "my_chat_member": {"chat": {"id": -100, "type": "supergroup",
                                                     "title": "Ops"}}},
    ]
    chats = list_chats(_config(fakeapi))
    assert [(c.id, c.type, c.title) for c in chats] == [
        (-100, "supergroup", "Ops"), (5, "private", "Ann (@ann)")]
    fakeapi.updates = []
    assert list_chats(_config(fakeapi)) == []


def test_list_chats_errors(fakeapi: FakeAPI) -> None:
    """401, a webhook (409) and a dead server each give a clear message without the token."""
    with pytest.raises(DeliveryError, match="bad token") as bad:
        list_chats(_config(fakeapi, token="999:nope"))  # noqa: S106 - a wrong fake token
    fakeapi.webhook_set = True
    with pytest.raises(DeliveryError, match="webhook is set") as hooked:
        list_chats(_config(fakeapi))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = TelegramDestination("ops", Secret(BOT_TOKEN), CHAT_ID,
                                 api_url=f"http://127.0.0.1:{port}")
    with pytest.raises(DeliveryError, match="cannot connect") as down:
        list_chats(config)
    for exc in (bad.value, hooked.value, down.value):
        assert BOT_TOKEN not in str(exc)
        assert exc.__cause__ is None
