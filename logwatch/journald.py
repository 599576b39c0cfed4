"""Log records as journald reads them: the sd-daemon ``<N>`` priority prefix.

Under systemd, a service's stderr is a stream to journald, which stores every
line at the unit's default priority (6, info) unless the line starts with a
syslog priority in angle brackets (``sd-daemon(3)``). Without the prefix
``journalctl -p warning`` shows nothing, errors included.

systemd tells a process its stderr is the journal with ``$JOURNAL_STREAM``
(``DEVICE:INODE`` of the stream); the variable is inherited by children whose
stderr may be a pipe or a terminal, so it counts only when it matches stderr
itself.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from logwatch.terminal import EscapingFormatter

#: syslog priorities (RFC 5424) for Python's levels
EMERG, ALERT, CRIT, ERR, WARNING, NOTICE, INFO, DEBUG = range(8)


def syslog_priority(levelno: int) -> int:
    """The syslog priority for a Python log level (custom levels fall to the next lower one)."""
    if levelno >= logging.CRITICAL:
        return CRIT
    if levelno >= logging.ERROR:
        return ERR
    if levelno >= logging.WARNING:
        return WARNING
    if levelno >= logging.INFO:
        return INFO
    return DEBUG


def stderr_is_journal(environ: Mapping[str, str] | None = None, fd: int = 2) -> bool:
    """Whether ``fd`` is the stream ``$JOURNAL_STREAM`` names (``DEVICE:INODE``)."""
    env = os.environ if environ is None else environ
    device, sep, inode = env.get("JOURNAL_STREAM", "").partition(":")
    if not sep:
        return False
    try:
        st = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (int(device), int(inode))
    except (OSError, ValueError):
        return False


class JournalFormatter(EscapingFormatter):
    """Prefix every line of a record (a traceback too) with its ``<N>`` priority.

    journald reads the prefix per line, so a continuation line without one
    would be stored at info. The message is escaped as on a terminal.
    """

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).split("\n"))
