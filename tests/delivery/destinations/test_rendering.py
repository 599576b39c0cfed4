"""What every destination shows of an alert: the log line once, no CRLF, whole lines; sizes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logwatch.config import ConsoleDestination, DiscordDestination
from logwatch.delivery.destinations.console import render_text
from logwatch.delivery.destinations.discord import (
    Discord,
    _description,
    _markdown_sized,
    _sized_embed,
    embed_size,
    escape_markdown,
)
from logwatch.delivery.destinations.telegram import Telegram, render_alert
from logwatch.delivery.destinations.types import cut_sized, utf16_len
from logwatch.secret import Secret
from tests.fakeapi import make_alert

LINE = "Feb 25 14:34:10 bastion-1 sshd[31602]: Failed password for root from 203.0.113.69 port 5"


def rendered(alert: object) -> dict[str, str]:
    return {"console": render_text(alert),  # type: ignore[arg-type]
            "discord": _description(alert, 4096)[0],  # type: ignore[arg-type]
            "telegram": render_alert(alert)}  # type: ignore[arg-type]


def test_a_message_ending_with_the_line_shows_it_once() -> None:
    """The shipped ssh-auth-failure says "the last one:\\n{line}": one copy, not two."""
    alert = make_alert(1, message=f"5 failed SSH logins from 203.0.113.69; the last one:\n{LINE}",
                       line=LINE)
    for name, text in rendered(alert).items():
        assert text.count("Failed password for root") == 1, (name, text)
        assert "the last one" in text, name


@pytest.mark.parametrize("name", ["console", "discord", "telegram"])
def test_crlf_lines_lose_their_carriage_return(name: str) -> None:
    alert = make_alert(1, message=f"seen:\n{LINE}\r", line=LINE + "\r")
    text = rendered(alert)[name]
    assert "\r" not in text
    assert text.count("Failed password for root") == 1


def test_telegram_dry_run_preview_ends_with_a_newline() -> None:
    """The next "--- ops would send" header starts on its own line."""
    from logwatch.config import TelegramDestination

    dest = Telegram(TelegramDestination("ops", Secret("1:x"), -100))
    try:
        assert dest.render([make_alert(1)]).preview.endswith("</i>\n")
    finally:
        dest.close()


def test_console_still_shows_a_message_that_is_only_the_line() -> None:
    """message = "{line}": the line, once, as before."""
    text = render_text(make_alert(1, message=LINE, line=LINE))
    assert text.count("Failed password") == 1
    assert ConsoleDestination("c").format == "text"


@pytest.mark.parametrize(("text", "units"), [
    ("", 0), ("plain ascii", 11), ("é and ü", 7), ("\U0001f600", 2), ("a\U0001f600b", 4),
    ("bad \udc80 byte", 10), ("\U0001f600\udcff", 3),
])
def test_utf16_len_counts_as_the_services_do(text: str, units: int) -> None:
    """An astral character is two UTF-16 units; a lone surrogate (undecodable log bytes) one."""
    assert utf16_len(text) == units


def test_discord_preview_is_the_payload_made_only_when_shown() -> None:
    """A send does not pay for the indented JSON a dry run prints; the dry run gets it."""
    dest = Discord(DiscordDestination("hook", Secret("https://discord.test/api/webhooks/1/t")))
    message = dest.render([make_alert(1), make_alert(2)])
    assert message.shown is None
    assert json.loads(message.preview) == message.payload
    assert message.preview.startswith('{\n  "embeds"')


#: text with what escaping, cutting and counting treat apart: markdown, backticks, newlines,
#: astral characters, lone surrogates (undecodable log bytes), long runs
_PIECES = st.sampled_from([*"ab\n`*_<>@&\\ \r#-", "\U0001f600", "\udcff", "\u00e9", "```",
                           "x" * 50])
_TEXT = st.lists(_PIECES, max_size=120).map("".join)


@settings(max_examples=300, deadline=None)
@given(title=_TEXT, message=_TEXT, line=_TEXT, host=_TEXT, count=st.integers(1, 3),
       fields=st.dictionaries(_TEXT, _TEXT, max_size=10))
def test_a_discord_embed_is_measured_as_embed_size_counts_it(
        title: str, message: str, line: str, host: str, count: int,
        fields: dict[str, str]) -> None:
    """The size counted while the embed is cut is what :func:`embed_size` says of it."""
    alert = make_alert(1, title=title, message=message, line=line, host=host, count=count,
                       fields=fields)
    embed, size = _sized_embed(alert)
    assert size == embed_size(embed)
    assert size <= 6000


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab*_`\n<@é\U0001f600\ud800"), max_size=40),
       st.integers(min_value=12, max_value=45))
def test_the_quick_markdown_cut_is_the_cut(text: str, budget: int) -> None:
    """Discord's short-ASCII path gives what :func:`cut_sized` with the escape gives, whatever
    the text (markdown, non-ASCII, astral, a lone surrogate) and however near the budget."""
    assert _markdown_sized(text, budget) == cut_sized(text, budget, escape_markdown)
