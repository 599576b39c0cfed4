"""Malformed but valid replies from Discord and Telegram, through a running sender.

Each case: the fake answers once with the hostile reply, then behaves. The sender
must live through it (no crash, no restart), wait no longer than ``max_retry_wait``,
store only sane retry times, name what happened, kill nothing that a retry can
deliver, deliver everything once the service is good, and leak no secret.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import pytest

from logwatch.delivery.sender import Sender, destination_status
from logwatch.state import State
from tests.delivery.test_sender import count, discord_sender, enqueue, telegram_sender
from tests.fakeapi import BOT_TOKEN, CHAT_ID, WEBHOOK_TOKEN, Canned, FakeAPI, make_alert
from tests.helpers import wait_for

#: small, so a wait that escaped the cap would time the test out
CAP = 0.3
NOT_JSON = "text/html"
NESTED = b"[" * 100_000 + b"]" * 100_000


def _tg(status: int, description: str, parameters: Any = None) -> bytes:
    """A Telegram error body; ``parameters`` as written (Python JSON allows NaN/Infinity)."""
    extra = "" if parameters is None else f', "parameters": {parameters}'
    return (f'{{"ok": false, "error_code": {status}, "description": "{description}"{extra}}}'
            ).encode()


DISCORD_REPLIES = {
    "retry_after 1e12": (Canned(429, b'{"retry_after": 1e12, "global": false}'), "rate limited"),
    "retry_after Infinity": (Canned(429, b'{"retry_after": Infinity}'), "rate limited"),
    "retry_after NaN": (Canned(429, b'{"retry_after": NaN}'), "rate limited"),
    "retry_after negative": (Canned(429, b'{"retry_after": -5}'), "rate limited"),
    "retry_after 10**400": (Canned(429, b'{"retry_after": 1' + b"0" * 400 + b"}"),
                            "rate limited"),
    "retry_after string": (Canned(429, b'{"retry_after": "soon"}'), "rate limited"),
    "retry_after null, headers inf/nan": (
        Canned(429, b'{"retry_after": null}',
               {"Retry-After": "nan", "X-RateLimit-Reset-After": "inf"}), "rate limited"),
    "429 HTML, Retry-After garbage": (
        Canned(429, "<html>slow down</html>", {"Retry-After": "tomorrow-ish"}, NOT_JSON),
        "rate limited"),
    "429 Retry-After far HTTP date": (
        Canned(429, b"", {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}), "rate limited"),
    "400 from a proxy (HTML)": (
        Canned(400, "<html><h1>400 Bad Request</h1></html>", content_type=NOT_JSON),
        "not Discord's own error"),
    "400 JSON but not Discord's": (Canned(400, b'["bad"]'), "not Discord's own error"),
    "400 nested 100,000 deep": (Canned(400, NESTED), "not Discord's own error"),
    "400 invalid UTF-8": (Canned(400, b'{"message": "\xff\xfe"}'), "not Discord's own error"),
    "502 empty": (Canned(502, b""), "Discord answered 502"),
}

TELEGRAM_REPLIES = {
    "retry_after abc": (Canned(429, _tg(429, "Too Many Requests", '{"retry_after": "abc"}')),
                        "rate limited"),
    "retry_after null": (Canned(429, _tg(429, "Too Many Requests", '{"retry_after": null}')),
                         "rate limited"),
    "retry_after NaN": (Canned(429, _tg(429, "Too Many Requests", '{"retry_after": NaN}')),
                        "rate limited"),
    "retry_after 1e300": (Canned(429, _tg(429, "Too Many Requests", '{"retry_after": 1e300}')),
                          "rate limited"),
    "retry_after 10**400": (Canned(429, _tg(429, "Too Many Requests",
                                            '{"retry_after": 1' + "0" * 400 + "}")),
                            "rate limited"),
    "parameters a list": (Canned(429, _tg(429, "Too Many Requests", "[1, 2]")), "rate limited"),
    "migrate_to_chat_id abc": (
        Canned(400, _tg(400, "Bad Request: group chat was upgraded to a supergroup chat",
                        '{"migrate_to_chat_id": "abc"}')), "no valid migrate_to_chat_id"),
    "migrate_to_chat_id null": (
        Canned(400, _tg(400, "Bad Request: group chat was upgraded to a supergroup chat",
                        '{"migrate_to_chat_id": null}')), "no valid migrate_to_chat_id"),
    "migrate_to_chat_id huge": (
        Canned(400, _tg(400, "Bad Request: group chat was upgraded to a supergroup chat",
                        '{"migrate_to_chat_id": 1e300}')), "no valid migrate_to_chat_id"),
    "migrate_to_chat_id 2**70": (
        Canned(400, _tg(400, "Bad Request: group chat was upgraded to a supergroup chat",
                        f'{{"migrate_to_chat_id": {2**70}}}')), "no valid migrate_to_chat_id"),
    "400 from a proxy (HTML)": (
        Canned(400, "<html>400 Bad Request</html>", content_type=NOT_JSON),
        "not Telegram's own error"),
    "400 ok true": (Canned(400, b'{"ok": true}'), "not Telegram's own error"),
    "200 not ok, not JSON": (Canned(200, b"<html>", content_type=NOT_JSON), "answered 200"),
}


def _settles(fake: FakeAPI, state: State, sender: Sender, name: str) -> list[str]:
    """Wait for every row delivered; return what the outbox and status say happened."""
    wait_for(lambda: count(state, name, "delivered") == 3, 15,
             message=f"3 delivered; status {destination_status(state.conn).get(name)}")
    assert fake.canned_sent == 1
    assert count(state, name, "dead") == 0
    assert sender.running
    assert sender.restarts == 0
    latest = time.time() + CAP
    for (next_try,) in state.conn.execute("SELECT next_try FROM outbox"):
        assert math.isfinite(next_try)
        assert next_try <= latest
    said = [e for (e,) in state.conn.execute("SELECT error FROM outbox") if e]
    said.append(destination_status(state.conn)[name]["last_error"] or "")
    return said


def _no_secret(*texts: str) -> None:
    everything = "\n".join(texts)
    for secret in (WEBHOOK_TOKEN, BOT_TOKEN, "SECRET"):
        assert secret not in everything


@pytest.mark.parametrize(("canned", "words"), DISCORD_REPLIES.values(), ids=DISCORD_REPLIES)
def test_discord_hostile_reply_is_survived_clamped_and_named(
        fake: FakeAPI, state: State, senders: list[Sender], caplog: pytest.LogCaptureFixture,
        canned: Canned, words: str) -> None:
    """One hostile Discord answer: clamped wait, named, then everything delivered."""
    caplog.set_level(logging.INFO)
    fake.reply(canned)
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(3)])
    sender = discord_sender(fake.discord_url(), state, senders, max_retry_wait=CAP)
    said = _settles(fake, state, sender, "hook")
    assert any(words in text for text in said), said
    _no_secret(caplog.text, *said)


@pytest.mark.parametrize(("canned", "words"), TELEGRAM_REPLIES.values(), ids=TELEGRAM_REPLIES)
def test_telegram_hostile_reply_is_survived_clamped_and_named(
        fake: FakeAPI, state: State, senders: list[Sender], caplog: pytest.LogCaptureFixture,
        canned: Canned, words: str) -> None:
    """One hostile Telegram answer: clamped wait, named, then everything delivered."""
    caplog.set_level(logging.INFO)
    fake.reply(canned)
    enqueue(state, [make_alert(n, to=("ops",)) for n in range(3)])
    sender = telegram_sender(fake, state, senders, max_retry_wait=CAP)
    said = _settles(fake, state, sender, "ops")
    assert any(words in text for text in said), said
    _no_secret(caplog.text, *said)
    assert {r.target for r in fake.received} == {str(CHAT_ID)}  # no bogus migration followed


@pytest.mark.parametrize("reset", ["inf", "nan", "1e12", "-3", "soon"])
def test_an_empty_bucket_with_a_hostile_reset_pauses_within_the_cap(
        fake: FakeAPI, state: State, senders: list[Sender], reset: str) -> None:
    """``X-RateLimit-Remaining: 0`` with a reset of inf/nan/garbage: the next send still goes."""
    fake.reply(Canned(200, b'{"id": "1"}', {"X-RateLimit-Remaining": "0",
                                            "X-RateLimit-Reset-After": reset}))
    enqueue(state, [make_alert(1, to=("hook",))])
    sender = discord_sender(fake.discord_url(), state, senders, max_retry_wait=CAP)
    wait_for(lambda: count(state, "hook", "delivered") == 1, 10, message="first delivered")
    enqueue(state, [make_alert(2, to=("hook",))], [sender])
    wait_for(lambda: count(state, "hook", "delivered") == 2, 10, message="second delivered")
    assert sender.running
    assert len(fake.received) == 1  # the first went to the canned reply


def test_only_discords_own_400_kills_the_batch(
        fake: FakeAPI, state: State, senders: list[Sender]) -> None:
    """A JSON 400 with Discord's code and message is the message's fault: dead, as before."""
    fake.reply(Canned(400, {"message": "Invalid Form Body", "code": 50035}))
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(3)])
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(3, 5)])
    discord_sender(fake.discord_url(), state, senders, max_retry_wait=CAP)
    wait_for(lambda: count(state, "hook", "pending") == 0, 10, message="settled")
    assert count(state, "hook", "dead") == 5  # one batch of five, refused by Discord itself


def test_only_telegrams_own_400_kills_the_batch(
        fake: FakeAPI, state: State, senders: list[Sender]) -> None:
    """Telegram's own ``can't parse entities`` 400 is the message's fault: dead, as before."""
    fake.reply(Canned(400, _tg(400, "Bad Request: can't parse entities")))
    enqueue(state, [make_alert(1, to=("ops",))])
    telegram_sender(fake, state, senders, max_retry_wait=CAP)
    wait_for(lambda: count(state, "ops", "pending") == 0, 10, message="settled")
    assert count(state, "ops", "dead") == 1


def test_an_outage_of_html_400s_kills_nothing(
        fake: FakeAPI, state: State, senders: list[Sender]) -> None:
    """The issue's outage: a proxy answering HTML 400 for a while; all 50 arrive at both."""
    proxy = Canned(400, "<html>400 Bad Request</html>", content_type=NOT_JSON)
    fake.reply(proxy, times=8)
    enqueue(state, [make_alert(n, to=("hook", "ops")) for n in range(50)])
    discord_sender(fake.discord_url(), state, senders, max_retry_wait=CAP)
    telegram_sender(fake, state, senders, max_retry_wait=CAP)
    wait_for(lambda: count(state, "hook", "delivered") + count(state, "ops", "delivered") == 100,
             30, message="100 delivered")
    assert count(state, "hook", "dead") + count(state, "ops", "dead") == 0
