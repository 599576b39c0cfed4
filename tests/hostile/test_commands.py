"""The commands that talk to the services: one line and an exit code, never a traceback.

``send-test`` on every hostile reply, ``telegram-chats`` on malformed updates, and
secret files or values that would only fail when first sent (a second line, a
space, a control character) refused by ``check`` at load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from logwatch.config import load_config
from logwatch.delivery.destinations.telegram import list_chats
from logwatch.delivery.sender import send_test
from logwatch.errors import ConfigError, DeliveryError
from logwatch.secret import Secret
from tests.delivery.test_sender import _config
from tests.fakeapi import BOT_TOKEN, CHAT_ID, WEBHOOK_TOKEN, Canned, FakeAPI
from tests.helpers import lines_of, write
from tests.helpers import logwatch as logwatch_cli
from tests.hostile.test_replies import DISCORD_REPLIES, TELEGRAM_REPLIES

ENV = {"BOT_TOKEN": BOT_TOKEN}

# -- send-test -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "canned"),
    [("hook", c) for c, _ in DISCORD_REPLIES.values()]
    + [("ops", c) for c, _ in TELEGRAM_REPLIES.values()],
    ids=[f"discord {k}" for k in DISCORD_REPLIES] + [f"telegram {k}" for k in TELEGRAM_REPLIES],
)
def test_send_test_explains_every_hostile_reply_in_one_line(
        tmp_path: Path, fake: FakeAPI, name: str, canned: Canned) -> None:
    """Not sent, one plain line, a finite wait if any, no secret."""
    fake.reply(canned)
    ok, explanation = send_test(_config(tmp_path, fake), name)
    assert not ok
    assert explanation.startswith("not sent: ")
    assert "\n" not in explanation
    assert "inf" not in explanation.split() and "nan" not in explanation.split()
    assert "unexpected error" not in explanation
    assert "SECRET" not in explanation


def test_send_test_caps_a_huge_wait(tmp_path: Path, fake: FakeAPI) -> None:
    """A 429 asking for 1e12 s is reported as the configured cap (1h by default)."""
    fake.reply(Canned(429, {"retry_after": 1e12}))
    ok, explanation = send_test(_config(tmp_path, fake), "hook")
    assert (ok, explanation) == (False, "not sent: rate limited, the service asks to wait "
                                        "3600s; try again then")


@pytest.mark.parametrize("service", ["hook", "ops"])
def test_cli_send_test_on_hostile_replies_prints_no_traceback(
        tmp_path: Path, fake: FakeAPI, service: str) -> None:
    """The real command, as a subprocess, on a reply that used to raise."""
    config = _config(tmp_path, fake)
    canned = (Canned(429, b'{"retry_after": NaN}') if service == "hook" else
              Canned(429, b'{"ok": false, "error_code": 429, "description": "x", '
                          b'"parameters": {"retry_after": NaN}}'))
    fake.reply(canned)
    done = logwatch_cli("send-test", "-c", str(config.path), service,
                        env={"HOOK_URL": fake.discord_url(), **ENV})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert lines_of(done.stdout) == [f"{service}: not sent: rate limited, the service asks to "
                                     "wait 5s; try again then"]


# -- telegram-chats ------------------------------------------------------------------------

BAD_RESULTS: dict[str, Any] = {
    "result an object": {"chat": 1},
    "result a number": 5,
    "result a string": "updates",
    "result null": None,
    "result missing": ...,
}
BAD_UPDATES: list[Any] = [
    1, "x", None, [], {"message": []}, {"message": {"chat": []}},
    {"message": {"chat": {"id": "abc"}}}, {"message": {"chat": {"id": True}}},
    {"message": {"chat": {"id": 1e300}}}, {"message": {"chat": {"id": 2**70}}},
    {"message": {"chat": {"id": None}}}, {"my_chat_member": "x"},
]


def _updates(result: Any) -> Canned:
    return Canned(200, {"ok": True} if result is ... else {"ok": True, "result": result})


@pytest.mark.parametrize("result", BAD_RESULTS.values(), ids=BAD_RESULTS)
def test_telegram_chats_on_a_malformed_result_is_one_error(fake: FakeAPI, result: Any) -> None:
    """A result that is not a list of updates: a DeliveryError naming it, nothing else."""
    fake.reply(_updates(result))
    dest = load_dest(fake)
    with pytest.raises(DeliveryError, match="unexpected result"):
        list_chats(dest)


def test_telegram_chats_skips_malformed_updates_and_keeps_good_ones(fake: FakeAPI) -> None:
    """Every bad update is skipped; the one good chat is listed, its text made printable."""
    good = {"message": {"chat": {"id": -1001, "type": "supergroup\x1b[2J", "title": "Ops\x07"}}}
    fake.reply(_updates([*BAD_UPDATES, good]))
    chats = list_chats(load_dest(fake))
    assert [(c.id, c.type, c.title) for c in chats] == [(-1001, "supergroup?[2J", "Ops?")]


def test_telegram_chats_on_a_deeply_nested_body(fake: FakeAPI) -> None:
    """A 200 nested 100,000 deep is not JSON we can use: one error, no RecursionError."""
    fake.reply(Canned(200, b"[" * 100_000 + b"]" * 100_000))
    with pytest.raises(DeliveryError):
        list_chats(load_dest(fake))


def test_cli_telegram_chats_malformed_result(tmp_path: Path, fake: FakeAPI) -> None:
    """The real command: exit 1, one line on stderr, no traceback."""
    config = _config(tmp_path, fake)
    fake.reply(_updates({"not": "a list"}))
    done = logwatch_cli("telegram-chats", "-c", str(config.path), "ops",
                        env={"HOOK_URL": fake.discord_url(), **ENV})
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert lines_of(done.stderr) == ['logwatch: destination "ops": getUpdates answered an '
                                     "unexpected result (a dict, not a list of updates)"]


def load_dest(fake: FakeAPI) -> Any:
    """The "ops" Telegram destination aimed at the fake."""
    from logwatch.config import TelegramDestination

    return TelegramDestination("ops", Secret(BOT_TOKEN), CHAT_ID, api_url=fake.base)


# -- secrets that only fail when first sent --------------------------------------------------

BAD_SECRET_FILES = {
    "a second line": "https://discord.example/api/webhooks/1/tok\nhttps://other.example/x\n",
    "a space inside": "https://discord.example/api/webhooks/1/tok en\n",
    "a control character": "https://discord.example/api/webhooks/1/\x01tok\n",
    "a CR line end inside": "https://discord.example/api/webhooks/1/tok\r\nmore",
}


def _hook_config(tmp_path: Path, table: str) -> Path:
    return write(tmp_path / "logwatch.toml", f"""
[logwatch]
state_dir = "{tmp_path / 'state'}"

[destinations.hook]
type = "discord"
{table}
""")


@pytest.mark.parametrize("content", BAD_SECRET_FILES.values(), ids=BAD_SECRET_FILES)
def test_a_url_file_that_is_not_one_clean_line_is_a_config_error(
        tmp_path: Path, content: str) -> None:
    """One problem naming the file and what is wrong, never the secret."""
    write(tmp_path / "hook.url", content, mode=0o600)
    path = _hook_config(tmp_path, 'url_file = "hook.url"')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert "url_file" in problem
    assert "hook.url" in problem
    assert "tok" not in problem


def test_a_token_from_the_environment_with_a_newline_is_a_config_error(tmp_path: Path) -> None:
    """``${VAR}`` holding two lines: refused at load, not at the first send."""
    path = write(tmp_path / "logwatch.toml", f"""
[logwatch]
state_dir = "{tmp_path / 'state'}"

[destinations.ops]
type = "telegram"
token = "${{BOT}}"
chat_id = 42
""")
    with pytest.raises(ConfigError, match="token: holds more than one line"):
        load_config(path, environ={"BOT": "123:abc\n456:def"})


def test_check_refuses_a_two_line_url_file_and_send_test_does_not_trace(tmp_path: Path) -> None:
    """``check`` used to say OK and ``send-test`` raised httpx.InvalidURL: now both say why."""
    write(tmp_path / "hook.url", f"https://discord.example/api/webhooks/1/{WEBHOOK_TOKEN}\n"
                                 "second\n", mode=0o600)
    path = str(_hook_config(tmp_path, 'url_file = "hook.url"'))
    for args in (("check", "-c", path), ("send-test", "-c", path, "hook")):
        done = logwatch_cli(*args)
        assert done.returncode == 1, args
        assert "Traceback" not in done.stderr
        assert "url_file" in done.stderr
        assert "more than one line" in done.stderr
        assert WEBHOOK_TOKEN not in done.stdout + done.stderr


@pytest.mark.parametrize(("value", "seconds"), [('"10m"', 600.0), ("90", 90.0),
                                                ('"1d"', 86400.0), (None, 3600.0)])
def test_max_retry_wait_setting(tmp_path: Path, value: str | None, seconds: float) -> None:
    """``[logwatch] max_retry_wait``: a duration, 1 h by default."""
    line = "" if value is None else f"max_retry_wait = {value}"
    path = write(tmp_path / "logwatch.toml", f"[logwatch]\nstate_dir = '{tmp_path}'\n{line}\n")
    assert load_config(path).settings.max_retry_wait == seconds


@pytest.mark.parametrize("value", ["nan", "inf", "0", '"0s"', '"2d"', '"soon"', "-5", "true"])
def test_max_retry_wait_rejects_what_is_not_a_sane_cap(tmp_path: Path, value: str) -> None:
    """NaN, infinity, zero, more than a day, garbage: one problem naming the key."""
    path = write(tmp_path / "logwatch.toml",
                 f"[logwatch]\nstate_dir = '{tmp_path}'\nmax_retry_wait = {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert "max_retry_wait" in problem
