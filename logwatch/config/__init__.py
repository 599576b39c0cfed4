"""Configuration: the TOML files read, checked once, and frozen into a :class:`Config`.

``load_config(path)`` (:mod:`~logwatch.config.load`) reads the main file and its
``include`` drop-ins and raises :class:`~logwatch.errors.ConfigError` listing
every problem, one line each, with file and line
(:mod:`~logwatch.config.document`); secrets come from the environment, files or
inline (:mod:`~logwatch.config.secrets`); the result is the frozen values of
:mod:`~logwatch.config.model`.
"""

from logwatch.config.document import locate_lines
from logwatch.config.load import load_config
from logwatch.config.model import (
    DEFAULT_CONFIG,
    DEFAULT_TELEGRAM_API,
    Config,
    ConsoleDestination,
    Destination,
    DiscordDestination,
    JournalSource,
    Settings,
    SourceConfig,
    StartAt,
    Storm,
    TelegramDestination,
)

__all__ = ["DEFAULT_CONFIG", "DEFAULT_TELEGRAM_API", "Config", "ConsoleDestination",
           "Destination", "DiscordDestination", "JournalSource", "Settings", "SourceConfig",
           "StartAt", "Storm", "TelegramDestination", "load_config", "locate_lines"]
