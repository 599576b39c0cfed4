"""Console: a few readable lines per alert, the same in a dry run."""

from __future__ import annotations

import io
import json

from logwatch.config import ConsoleDestination
from logwatch.delivery.destinations.console import Console
from tests.fakeapi import make_alert


def test_text_shows_severity_title_message_where_and_line() -> None:
    """One alert: severity, title, message, fields, host/rule/source, the line."""
    out = io.StringIO()
    console = Console(ConsoleDestination("term"), stream=out)
    outcome = console.send(console.render([make_alert(7, severity="critical")]))
    assert outcome.verdict == "ok"
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[CRITICAL] ")
    assert lines[0].endswith(" event 7")
    assert lines[1] == "  something happened (7)"
    assert lines[2] == "  n=7"
    assert lines[3] == "  host web-1 · rule numbered · source app"
    assert lines[4] == "  > ERROR event 7"


def test_terminal_escapes_in_log_text_are_neutralised() -> None:
    """An escape sequence in a log line never reaches the terminal."""
    console = Console(ConsoleDestination("term"))
    text = console.render([make_alert(line="evil \x1b]0;pwned\x07 \x1b[2J")]).payload
    assert "\x1b" not in text
    assert "\x07" not in text


def test_json_format_prints_one_object_per_alert() -> None:
    """format = "json": one parseable line per alert."""
    out = io.StringIO()
    console = Console(ConsoleDestination("term", format="json"), stream=out)
    message = console.render([make_alert(1), make_alert(2)])
    console.send(message)
    assert message.count == 2
    assert [json.loads(line)["title"] for line in out.getvalue().splitlines()] == [
        "event 1", "event 2"]
