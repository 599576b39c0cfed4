"""The configuration as the rest of logwatch sees it: frozen, validated values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import regex

from logwatch.fleet.settings import FleetSettings
from logwatch.rules import DEFAULT_MATCH_TIMEOUT, Rule
from logwatch.secret import Secret

DEFAULT_CONFIG = "/etc/logwatch/logwatch.toml"
DEFAULT_TELEGRAM_API = "https://api.telegram.org"
#: the largest `max_retry_wait` accepted (a day: a reply asking for more is wrong)
MAX_RETRY_WAIT_LIMIT = 86400.0
StartAt = Literal["end", "beginning"]
#: with inotify on, every followed file is checked anyway this often (an overflow: at once)
DEFAULT_RESCAN_INTERVAL = 30.0
#: after a read that found lines, how long the next are let gather before one read, match, commit
DEFAULT_BATCH_WAIT = 0.08
MAX_BATCH_WAIT = 1.0


@dataclass(frozen=True, slots=True)
class Storm:
    """Per-destination storm handling: above ``rate`` alerts per ``per`` seconds, send digests."""

    rate: int = 20
    per: float = 60.0
    digest_every: float = 300.0
    top: int = 10


@dataclass(frozen=True, slots=True)
class Settings:
    """The ``[logwatch]`` table."""

    state_dir: Path
    hostname: str
    start_at: StartAt = "end"
    ignore: tuple[regex.Pattern[str], ...] = ()
    max_line_length: int = 65536
    poll_interval: float = 1.0
    use_inotify: bool = True
    drain_timeout: float = 10.0
    failing_after: float = 600.0
    match_timeout: float = DEFAULT_MATCH_TIMEOUT
    storm: Storm = field(default_factory=Storm)
    #: the longest a sender waits because a reply said so (a 429's retry_after)
    max_retry_wait: float = 3600.0
    #: the shipped rule packs enabled (``"default"`` expanded), in the order given
    packs: tuple[str, ...] = ()
    #: names a rule's ``to`` may use besides destinations: name -> destinations
    route: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rescan_interval: float = DEFAULT_RESCAN_INTERVAL
    batch_wait: float = DEFAULT_BATCH_WAIT


@dataclass(frozen=True, slots=True)
class ConsoleDestination:
    """Print alerts to standard output (the default when none is configured)."""

    name: str
    type: Literal["console"] = "console"
    min_severity: str = "info"
    format: Literal["text", "json"] = "text"


@dataclass(frozen=True, slots=True)
class DiscordDestination:
    """A Discord webhook."""

    name: str
    url: Secret
    type: Literal["discord"] = "discord"
    min_severity: str = "info"
    thread_id: int | None = None
    username: str | None = None


@dataclass(frozen=True, slots=True)
class TelegramDestination:
    """A Telegram bot posting to one chat."""

    name: str
    token: Secret
    chat_id: int | str
    type: Literal["telegram"] = "telegram"
    min_severity: str = "info"
    thread_id: int | None = None
    api_url: str = DEFAULT_TELEGRAM_API


Destination = ConsoleDestination | DiscordDestination | TelegramDestination


@dataclass(frozen=True, slots=True)
class JournalSource:
    """Follow the systemd journal, filtered by ``journalctl`` matches and units."""

    match: tuple[str, ...] = ()
    units: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """A ``[sources.NAME]`` table: file globs and/or a journal filter."""

    name: str
    files: tuple[str, ...] = ()
    journal: JournalSource | None = None
    silent_after: float | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration, validated."""

    path: Path
    settings: Settings
    destinations: Mapping[str, Destination]
    sources: Mapping[str, SourceConfig]
    rules: tuple[Rule, ...]
    #: things that work but deserve a word (an inline secret, a rule with no literal)
    warnings: tuple[str, ...] = ()
    #: ``[metrics] listen``: where Prometheus scrapes, or None (no metrics)
    metrics_listen: tuple[str, int] | None = None
    #: ``[fleet]``: coordinate with other hosts through Redis (None: this host alone)
    fleet: FleetSettings | None = None

    def rules_for(self, source: str) -> tuple[Rule, ...]:
        """The rules that read ``source``."""
        return tuple(r for r in self.rules if r.source in (None, source))
