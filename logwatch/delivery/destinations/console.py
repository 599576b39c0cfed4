"""The console: alerts printed to standard output, a few readable lines each (or JSON)."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from logwatch.config import ConsoleDestination
from logwatch.delivery.destinations.types import (
    Message,
    Outcome,
    Window,
    message_text,
    shown_line,
)
from logwatch.models import Alert

LINE_MAX = 1000


def render_text(alert: Alert) -> str:
    """Severity and title, then the message, fields, where, and the line."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(alert.time))
    lines = [f"[{alert.severity.upper()}] {stamp} {_one_line(alert.title)}"]
    lines.extend(f"  {_one_line(line)}" for line in message_text(alert).splitlines())
    if alert.fields or alert.count > 1:
        items = ([f"count={alert.count}"] if alert.count > 1 else []) + [
            f"{k}={_one_line(v)}" for k, v in alert.fields.items()]
        lines.append(f"  {' '.join(items)}")
    lines.append(f"  host {alert.host} · rule {alert.rule} · source {alert.source}")
    if alert.line:
        line = _one_line(shown_line(alert))
        if len(line) > LINE_MAX:
            line = line[:LINE_MAX] + "… [cut]"
        lines.append(f"  > {line}")
    return "\n".join(lines)


def _one_line(text: str) -> str:
    """No control characters reach the terminal (log text can hold escape sequences)."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


class Console:
    """Standard output (``ConsoleDestination``); prints the same in a dry run."""

    kind = "console"
    posts = False
    max_batch = 100
    pace: tuple[Window, ...] = ()

    def __init__(self, config: ConsoleDestination, *, stream: TextIO | None = None) -> None:
        self.name = config.name
        self.config = config
        self._stream = stream

    def __repr__(self) -> str:
        return f"Console(name={self.name!r})"

    def render(self, alerts: Sequence[Alert]) -> Message:
        """Every alert of the batch, as text or one JSON object per line."""
        if self.config.format == "json":
            text = "\n".join(alert.to_json() for alert in alerts)
        else:
            text = "\n\n".join(render_text(alert) for alert in alerts) + "\n"
        return Message(len(alerts), text, text)

    def send(self, message: Message) -> Outcome:
        """Print; a closed or broken stdout is retried like a network error."""
        stream = self._stream or sys.stdout
        try:
            print(message.payload, file=stream, flush=True)
        except (OSError, ValueError) as exc:
            return Outcome("backoff", f"cannot write to standard output: {exc}")
        return Outcome("ok")

    def restore(self, saved: Mapping[str, Any]) -> None:
        """Nothing to restore."""

    def redact(self, text: str) -> str:
        """Nothing secret here."""
        return text

    def close(self) -> None:
        """Nothing to close."""
