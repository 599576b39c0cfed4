"""Secrets a service echoes back, in any encoding, never reach a log, status or the outbox."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote

import pytest

from logwatch.commands.status import collect_status, format_status
from logwatch.delivery.sender import Sender, destination_status, send_test
from logwatch.secret import Secret
from logwatch.state import State
from tests.delivery.test_sender import _config, count, discord_sender, enqueue, telegram_sender
from tests.fakeapi import BOT_TOKEN, WEBHOOK_ID, WEBHOOK_TOKEN, Canned, FakeAPI, make_alert
from tests.helpers import wait_for

BOT_SECRET_PART = BOT_TOKEN.split(":", 1)[1]
HOOK_PATH = f"/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}"


def _encodings(text: str) -> dict[str, str]:
    """``text`` raw and percent-encoded every way a server might."""
    upper = quote(text, safe="")
    every = "".join(f"%{b:02X}" for b in text.encode())
    return {"raw": text, "url-encoded": upper, "lowercase hex": upper.replace("%3A", "%3a")
            .replace("%2F", "%2f"), "every byte": every, "every byte lowercase": every.lower(),
            "double-encoded": upper.replace("%", "%25")}


TOKEN_ECHOES = {f"{part} {kind}": value for part, whole in
                (("token", BOT_TOKEN), ("token part", BOT_SECRET_PART))
                for kind, value in _encodings(whole).items()}
HOOK_ECHOES = {f"{part} {kind}": value for part, whole in
               (("path", HOOK_PATH), ("id/token", f"{WEBHOOK_ID}/{WEBHOOK_TOKEN}"),
                ("token", WEBHOOK_TOKEN))
               for kind, value in _encodings(whole).items()}
HOOK_URL = f"https://discord.example{HOOK_PATH}"


@pytest.mark.parametrize("echo", TOKEN_ECHOES.values(), ids=TOKEN_ECHOES)
def test_a_bot_token_is_masked_in_every_encoding(echo: str) -> None:
    """``Secret.redact`` finds the token however it was encoded."""
    masked = Secret(BOT_TOKEN).redact(f"Not Found: /bot{echo}/sendMessage")
    assert BOT_SECRET_PART not in masked
    assert "SECRET" not in masked.upper().replace("%", "")  # not even spelled in hex
    assert masked.startswith("Not Found: /bot")


@pytest.mark.parametrize("echo", HOOK_ECHOES.values(), ids=HOOK_ECHOES)
def test_a_webhook_url_is_masked_in_every_encoding(echo: str) -> None:
    """The webhook's path, its id/token part and the token alone, however encoded."""
    masked = Secret(HOOK_URL).redact(f"No webhook at {echo}.")
    assert "SECRET" not in masked
    assert masked.startswith("No webhook at ")
    assert masked.endswith("***.")


def test_short_ordinary_words_are_not_masked() -> None:
    """A URL ending in a short word does not mask that word everywhere."""
    assert Secret("http://127.0.0.1:8080/hook").redact("webhook hook") == "webhook hook"


def _everything(state: State, caplog: pytest.LogCaptureFixture, *more: str) -> str:
    rows = [str(r) for r in state.conn.execute("SELECT error FROM outbox")]
    rows += [str(r) for r in state.conn.execute("SELECT value FROM kv")]
    return "\n".join([caplog.text, str(destination_status(state.conn)), *rows, *more])


def test_echoed_secrets_reach_no_log_status_or_outbox(
        tmp_path: Path, fake: FakeAPI, state: State, senders: list[Sender],
        caplog: pytest.LogCaptureFixture) -> None:
    """404s and 401s quoting the secrets every way: masked in all the daemon keeps and says."""
    caplog.set_level(logging.DEBUG)
    for echo in HOOK_ECHOES.values():
        fake.reply(Canned(404, {"message": f"Unknown Webhook {echo}", "code": 10015}))
    fake.reply(Canned(500, {"message": f"upstream {HOOK_URL} failed", "code": 0}))
    fake.reply(Canned(400, {"message": f"Invalid Form Body at {HOOK_PATH}", "code": 50035}))
    enqueue(state, [make_alert(n, to=("hook",)) for n in range(15)])
    discord_sender(fake.discord_url(), state, senders, probe_interval=0.01)
    replies = len(HOOK_ECHOES) + 2
    wait_for(lambda: fake.canned_sent == replies and count(state, "hook", "pending") == 0, 20,
             message="hook settled")
    for echo in TOKEN_ECHOES.values():
        fake.reply(Canned(401, f'{{"ok": false, "error_code": 401, '
                               f'"description": "Unauthorized: bot{echo}"}}'.encode()))
    enqueue(state, [make_alert(n, to=("ops",)) for n in range(30)])
    telegram_sender(fake, state, senders, probe_interval=0.01)
    replies += len(TOKEN_ECHOES)
    wait_for(lambda: fake.canned_sent == replies and count(state, "ops", "pending") == 0, 20,
             message="ops settled")
    config = _config(tmp_path, fake)
    fake.reply(Canned(404, {"message": f"Unknown Webhook {quote(HOOK_PATH, safe='')}",
                            "code": 10015}))
    said_hook = send_test(config, "hook")[1]
    fake.reply(Canned(401, f'{{"ok": false, "error_code": 401, "description": '
                           f'"{quote(BOT_TOKEN).replace("%3A", "%3a")}"}}'.encode()))
    said_ops = send_test(config, "ops")[1]
    for sender in senders:
        sender.stop(1)
    status = format_status(collect_status(config))
    everything = _everything(state, caplog, said_hook, said_ops, status)
    assert "Unknown Webhook ***" in everything  # the echoes did arrive, masked
    assert "Unauthorized: bot***" in everything
    assert count(state, "hook", "dead") >= 1
    for secret in ("SECRET", WEBHOOK_TOKEN.lower(), BOT_SECRET_PART.lower()):
        assert secret not in everything
