"""Text from logs and file names shown safely: control characters escaped.

Log lines and file names come from attackers; an ESC or BEL written raw to a
terminal can move the cursor, rewrite what is shown, retitle the window or
worse. Everything logwatch prints that came from outside goes through
:func:`escape_controls`; :class:`EscapingFormatter` does it for every log record.
"""

from __future__ import annotations

import logging

import regex

#: C0 controls (but tab), DEL, C1 controls, and the Unicode line/paragraph separators
_CONTROLS = regex.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def _escaped(match: regex.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with control characters shown as ``\\x1b``, ``\\x07``, ``\\n``-free."""
    return _CONTROLS.sub(_escaped, text)


class EscapingFormatter(logging.Formatter):
    """A Formatter whose messages never carry a raw control character (tracebacks aside)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # logging names it so
        """The formatted line, after escaping the message built from the record's arguments."""
        record.message = escape_controls(record.message)
        return super().formatMessage(record)
