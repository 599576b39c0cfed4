"""Destinations: the :class:`~.types.Destination` protocol and the registry of kinds.

``DESTINATIONS`` maps a config ``type`` to the class that sends there; to add a
service, write a module with a class following the protocol and register it here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from logwatch.config import Destination as DestinationConfig
from logwatch.delivery.destinations.console import Console
from logwatch.delivery.destinations.discord import Discord
from logwatch.delivery.destinations.telegram import Telegram
from logwatch.delivery.destinations.types import Destination, Message, Outcome, Window

__all__ = ["DESTINATIONS", "Destination", "Message", "Outcome", "Window", "build_destination"]

DESTINATIONS: dict[str, Callable[..., Destination]] = {
    "console": Console,
    "discord": Discord,
    "telegram": Telegram,
}


def build_destination(config: DestinationConfig, **options: Any) -> Destination:
    """The destination for one ``[destinations.NAME]`` table (``options``: pace, timeout)."""
    return DESTINATIONS[config.type](config, **options)
