"""logwatch: follow system logs, match TOML rules, alert Discord and Telegram."""

from __future__ import annotations

__version__ = "0.1.0"
