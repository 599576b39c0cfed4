"""The exception tree of logwatch.

    LogwatchError             anything logwatch reports to the user as one line
    ├── ConfigError           the configuration is wrong; carries every problem found
    ├── SourceError           a log file or the journal cannot be read
    ├── StateError            the state database cannot be opened or written
    └── DeliveryError         a destination refused or could not be reached
                              (``permanent`` tells whether a retry can help)

Library errors (``OSError``, ``tomllib.TOMLDecodeError``, ``regex.error``,
``httpx.HTTPError``) are translated where they enter, with ``raise ... from exc``.
No message ever contains a secret: destinations hold their URLs and tokens as
:class:`logwatch.secret.Secret`.
"""

from __future__ import annotations

from collections.abc import Iterable


class LogwatchError(Exception):
    """Base of every error logwatch reports to the user."""


class ConfigError(LogwatchError):
    """The configuration is invalid; ``problems`` lists every one found, one line each."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("\n".join(self.problems))


class SourceError(LogwatchError):
    """A log source cannot be read (permissions, missing journalctl, ...)."""


class StateError(LogwatchError):
    """The SQLite state in ``state_dir`` cannot be opened or written."""


class DeliveryError(LogwatchError):
    """A destination did not accept a message.

    ``permanent`` is true when retrying cannot help (unknown webhook, bad token,
    chat not found); ``retry_after`` is the wait the service asked for, if any.
    """

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after
