"""Discord: rendering hostile text within limits, batching, and reading Discord's answers."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from typing import Any

import httpx
import pytest

from logwatch.config import DiscordDestination
from logwatch.delivery.destinations.discord import (
    Discord,
    classify,
    escape_markdown,
    render_embed,
    timestamp,
)
from logwatch.delivery.destinations.types import CUT_MARKER, Http, Window
from logwatch.secret import Secret
from tests.fakeapi import (
    HOSTILE_LINE,
    WEBHOOK_TOKEN,
    FakeAPI,
    discord_payload_problems,
    hostile_alert,
    make_alert,
)


def discord(url: str = "https://discord.example/api/webhooks/1/tok", **options: Any) -> Discord:
    """A Discord destination named "hook"."""
    return Discord(DiscordDestination("hook", Secret(url), **options), pace=(Window(5, 0.2),))


def test_hostile_text_is_escaped_and_within_limits() -> None:
    """Mentions, markdown and a 10,000-character tail render as inert text inside the limits."""
    message = discord().render([hostile_alert()])
    payload = message.payload
    assert discord_payload_problems(payload) == []
    assert payload["allowed_mentions"] == {"parse": []}
    (embed,) = payload["embeds"]
    assert embed["title"] == r"\@everyone \<\@&123\> \*\*bold\*\* \<b\>x\</b\> &amp;"
    assert r"\*\*root\*\*" in embed["description"]
    # the log line sits in one code block that it could not close early
    assert embed["description"].count("```") == 2
    assert CUT_MARKER in embed["description"]
    assert len(embed["description"]) <= 4096
    assert "@everyone" in embed["description"]  # inside the code block: shown, never a ping


def test_markdown_escape_covers_mentions_and_formatting() -> None:
    """Every character with a markdown meaning gets a backslash."""
    assert escape_markdown("a_b*c~d`e|f>g<h@i#j-k[l](m):n\\") == (
        r"a\_b\*c\~d\`e\|f\>g\<h\@i\#j\-k\[l\]\(m\)\:n\\")


@pytest.mark.parametrize("seed", range(20))
def test_markdown_escape_is_one_backslash_per_character_whatever_the_text(seed: int) -> None:
    """Runs of backslashes, specials side by side, non-ASCII and lone surrogates: each
    character with a meaning gets exactly one backslash, the others none."""
    pool = "\\*_~`|<>#-[]():@ aZ9\nü😀\udcff"
    text = "".join(random.Random(seed).choice(pool) for _ in range(200))
    expected = "".join("\\" + ch if ch in "\\*_~`|<>#-[]():@" else ch for ch in text)
    assert escape_markdown(text) == expected


@pytest.mark.parametrize("when", [
    1700000000.0, 1700000000.123456, 1700000000.9999995, 17.9999995, 1700000000.0000005,
    1.5e-6, 2.5e-6, 0.0, -0.5, -1e-7, -86399.9999996, 4102444800.25, 1e9 + 0.5e-6])
def test_an_embed_timestamp_is_what_isoformat_writes(when: float) -> None:
    """Rounding to the microsecond (half to even, into the next second), before 1970, twice
    in a row (the second's text kept): the text ``datetime`` makes."""
    expected = dt.datetime.fromtimestamp(when, dt.UTC).isoformat()
    assert timestamp(when) == expected
    assert timestamp(when) == expected
    assert timestamp(random.Random(when).uniform(-1e9, 4e9)) != expected


@pytest.mark.parametrize("when", [
    -30610224000.0, -30610224000.5, -62135596800.0, 253402300799.5, 253402300799.99997,
    253402300800.0, -1e12, 1e300, math.nan, math.inf])
def test_an_embed_timestamp_outside_four_digit_years_is_datetimes(when: float) -> None:
    """Years before 1000 (``datetime`` pads them to four digits, ``strftime`` does not) and
    beyond 9999 or no time at all (``datetime`` refuses them): as ``datetime`` does."""
    try:
        expected = dt.datetime.fromtimestamp(when, dt.UTC).isoformat()
    except (ValueError, OverflowError, OSError) as exc:
        with pytest.raises(type(exc)):
            timestamp(when)
    else:
        assert timestamp(when) == expected


@pytest.mark.parametrize("when", [math.nan, math.inf, 1e300])
def test_a_timestamp_out_of_range_fails_as_datetime_does(when: float) -> None:
    """A damaged row's time: the error ``datetime`` raises (the sender's loop reports it)."""
    with pytest.raises((OverflowError, ValueError, OSError)):
        timestamp(when)


def test_code_fence_in_the_line_cannot_break_out() -> None:
    """A line full of backticks keeps exactly one code block."""
    embed = render_embed(make_alert(line="x ``` y ```` z ``````"))
    assert embed["description"].count("```") == 2


def test_a_long_multiline_message_is_cut_on_a_line_boundary() -> None:
    """The cut falls between lines and is marked."""
    text = "\n".join(f"line {i:04d} " + "x" * 50 for i in range(200))
    embed = render_embed(make_alert(message=text, line=""))
    kept = embed["description"].split("\n")
    assert kept[-1] == CUT_MARKER
    assert all(line.startswith(r"line ") and line.endswith("x" * 50) for line in kept[:-1])


def test_batches_up_to_ten_embeds_and_6000_characters() -> None:
    """25 small alerts make a message of 10; hostile ones stop at the 6000 total."""
    dest = discord()
    small = dest.render([make_alert(n) for n in range(25)])
    assert small.count == 10
    assert [e["title"] for e in small.payload["embeds"]] == [f"event {n}" for n in range(10)]
    big = dest.render([hostile_alert(n) for n in range(5)])
    assert 1 <= big.count < 5
    assert discord_payload_problems(big.payload) == []


def test_an_embed_is_made_once_for_the_next_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """The alert that did not fit goes first in the next message, and a retried message is
    rendered again: their embeds are the ones already made, the same as made anew; another
    alert under the same id (never in one outbox) is rendered for itself."""
    import logwatch.delivery.destinations.discord as module

    made: list[str] = []
    real = module._sized_embed

    def counted(alert: Any) -> tuple[dict[str, Any], int]:
        made.append(alert.id)
        return real(alert)

    monkeypatch.setattr(module, "_sized_embed", counted)
    dest = discord()
    alerts = [hostile_alert(n) for n in range(5)]
    first = dest.render(alerts)
    second = dest.render(alerts[first.count:])
    assert made.count(alerts[first.count].id) == 1
    assert second.payload == discord().render(alerts[first.count:]).payload
    made.clear()
    assert dest.render(alerts[first.count:]).payload == second.payload
    assert made == []
    other = make_alert(first.count)  # the same id, other text
    assert other.id == alerts[first.count].id
    assert dest.render([other]).payload["embeds"] == [render_embed(other)]


def test_field_names_are_escaped_once_and_kept_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A field name is shown escaped, as made anew, however many names come and go."""
    import logwatch.delivery.destinations.discord as module

    monkeypatch.setattr(module, "TEXTS_KEPT", 4)
    monkeypatch.setattr(module, "_NAMES", {})
    for n in range(20):
        name = f"user_{n}*" + "x" * n * 5
        embed = render_embed(make_alert(fields={name: "v"}))
        assert embed["fields"][0]["name"] == module._markdown_sized(name, module.FIELD_NAME_MAX)[0]
        assert len(module._NAMES) <= 4
    assert render_embed(make_alert(fields={"a_b": "1"}))["fields"][0]["name"] == r"a\_b"


def test_field_values_and_footers_are_kept_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short field values and footers are made once, shown as made anew, however many come
    and go (hostile ones included); a long value is never kept."""
    import logwatch.delivery.destinations.discord as module

    monkeypatch.setattr(module, "TEXTS_KEPT", 4)
    monkeypatch.setattr(module, "_VALUES", {})
    monkeypatch.setattr(module, "_FOOTERS", {})
    for n in range(20):
        value = "*`@here" * (n % 7) + f"10.0.0.{n}"
        alert = make_alert(fields={"ip": value}, host=f"web-{n}·é", rule=f"rule_{n}")
        for _ in range(2):  # made, then kept
            embed = render_embed(alert)
            assert embed["fields"][0]["value"] == module.escape_markdown(value)
            assert embed["footer"]["text"] == f"web-{n}·é · rule_{n} · warning"
        assert len(module._VALUES) <= 4 and len(module._FOOTERS) <= 4
    long = "a" * (module.VALUE_KEPT_MOST + 1)
    assert render_embed(make_alert(fields={"v": long}))["fields"][0]["value"] == long
    assert long not in module._VALUES
    footer = "h" * (module.FOOTER_MAX + 10)
    assert len(render_embed(make_alert(host=footer))["footer"]["text"]) <= module.FOOTER_MAX
    assert not any(text.startswith(footer) for text in module._FOOTERS)


def test_severity_colours_and_footer() -> None:
    """Critical is red, resolved is green; the footer names host and rule."""
    assert render_embed(make_alert(severity="critical"))["color"] == 0xE74C3C
    assert render_embed(make_alert(kind="resolved"))["color"] == 0x2ECC71
    embed = render_embed(make_alert())
    assert embed["footer"]["text"].startswith("web-1 · numbered")
    assert embed["timestamp"].startswith("2023-11-14T22:13:21")


def _answer(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers=headers)


CONFIG = DiscordDestination("hook", Secret("https://discord.example/api/webhooks/1/tok"))


@pytest.mark.parametrize(
    ("status", "body", "verdict", "words"),
    [
        (200, {"id": "1"}, "ok", ""),
        (429, {"retry_after": 1.25, "global": False}, "retry", "rate limited"),
        (404, {"message": "Unknown Webhook", "code": 10015}, "permanent", "unknown webhook"),
        (401, {"message": "Invalid Webhook Token", "code": 50027}, "permanent",
         "invalid webhook token"),
        (403, {"message": "Missing Access", "code": 50001}, "permanent", "refused"),
        (400, {"message": "Invalid Form Body", "code": 50035}, "reject", "rejected"),
        (502, {"message": "Bad Gateway"}, "backoff", "502"),
    ],
)
def test_classify(status: int, body: Any, verdict: str, words: str) -> None:
    """Each answer Discord gives maps to the right verdict and a plain reason."""
    outcome = classify(_answer(status, body), CONFIG)
    assert outcome.verdict == verdict
    assert words in outcome.reason.lower()
    if status == 429:
        assert outcome.retry_after == 1.25


def test_rate_limit_headers_pause_the_next_request() -> None:
    """X-RateLimit-Remaining 0 asks to wait X-RateLimit-Reset-After."""
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "0.75"}
    assert classify(_answer(200, {}, headers), CONFIG).pause == 0.75
    headers["X-RateLimit-Remaining"] = "3"
    assert classify(_answer(200, {}, headers), CONFIG).pause is None


def test_thread_id_username_and_wait_reach_the_server(fakeapi: FakeAPI) -> None:
    """thread_id and wait=true go in the query, username in the body."""
    dest = discord(fakeapi.discord_url(), thread_id=987, username="logwatch")
    try:
        outcome = dest.send(dest.render([hostile_alert()]))
    finally:
        dest.close()
    assert outcome.verdict == "ok", outcome.reason
    (received,) = fakeapi.received
    assert received.query == {"wait": "true", "thread_id": "987"}
    assert received.body["username"] == "logwatch"
    assert fakeapi.violations == []
    assert HOSTILE_LINE[:30] in received.body["embeds"][0]["description"]


def test_the_request_is_what_httpx_json_and_params_made(monkeypatch: pytest.MonkeyPatch) -> None:
    """The body we encode is byte for byte httpx's ``json=`` (compact UTF-8, a JSON type), and
    wait/thread_id replace the URL's own query as ``params=`` did; sends reuse the parsed URL."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    monkeypatch.setattr("logwatch.delivery.destinations.discord.new_client",
                        lambda *a: Http(transport=httpx.MockTransport(answer)))
    dest = discord("https://discord.example/api/webhooks/1/tok?x=1", thread_id=5)
    message = dest.render([hostile_alert(), make_alert(2, title="caf\u00e9 \U0001f600")])
    try:
        assert [dest.send(message).verdict for _ in range(2)] == ["ok", "ok"]
    finally:
        dest.close()
    expected = httpx.Request("POST", "https://discord.example/api/webhooks/1/tok?x=1",
                             params={"wait": "true", "thread_id": "5"}, json=message.payload)
    for request in seen:
        assert request.url == expected.url
        assert request.content == expected.content
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["Content-Length"] == str(len(expected.content))


@pytest.mark.parametrize("proxy", [False, True], ids=["direct", "proxy"])
def test_the_environments_proxy_still_carries_the_requests(
        fakeapi: FakeAPI, monkeypatch: pytest.MonkeyPatch, *, proxy: bool) -> None:
    """Sends go straight to the transport only when no proxy is set: HTTP_PROXY (here the fake
    itself, which reads the absolute URL) still carries them to a host we could not reach."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    url = fakeapi.discord_url()
    if proxy:
        monkeypatch.setenv("HTTP_PROXY", fakeapi.base)
        url = url.replace(fakeapi.base, "http://discord.invalid")
    dest = discord(url)
    try:
        outcomes = [dest.send(dest.render([make_alert(n)])) for n in range(3)]
    finally:
        dest.close()
    assert [o.verdict for o in outcomes] == ["ok"] * 3, outcomes
    assert [r.query for r in fakeapi.received] == [{"wait": "true"}] * 3


def test_network_errors_never_carry_the_url(fakeapi: FakeAPI) -> None:
    """A dropped connection is a backoff whose reason names the host, not the URL."""
    fakeapi.fail("drop")
    dest = discord(fakeapi.discord_url())
    try:
        outcome = dest.send(dest.render([make_alert()]))
    finally:
        dest.close()
    assert outcome.verdict == "backoff"
    assert "127.0.0.1" in outcome.reason
    assert WEBHOOK_TOKEN not in outcome.reason
    assert "/api/webhooks" not in outcome.reason
    assert WEBHOOK_TOKEN not in repr(dest)


def test_a_message_that_repeats_the_line_is_shown_once() -> None:
    """The default message is the line itself: it appears only in the code block."""
    embed = render_embed(make_alert(message="ERROR event 1", line="ERROR event 1"))
    assert embed["description"] == "```\nERROR event 1\n```"
    assert "description" not in render_embed(make_alert(message="", line=""))
