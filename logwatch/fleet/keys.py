"""Redis keys for the fleet: a namespace, a kind, and a hash of what identifies the thing.

Keys never hold a webhook URL, a token or log text: a destination is named by a
keyed hash of its URL (or bot token + chat), a dedup or threshold key by a hash of
the rule id and the key's value. Redis sees host names and counts, nothing else.
"""

from __future__ import annotations

import hashlib

from logwatch.config import Destination, DiscordDestination, TelegramDestination

_PERSON = b"logwatch-fleet"


def digest(*parts: str) -> str:
    """A short stable hash of ``parts`` (96 bits: no collision in any fleet's lifetime)."""
    data = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=12, person=_PERSON).hexdigest()


def key(namespace: str, kind: str, *parts: str) -> str:
    """``logwatch:claim:3f2a...``: one Redis key."""
    return f"{namespace}:{kind}:{digest(*parts)}"


def destination_identity(dest: Destination) -> str | None:
    """What every host posting to the same webhook / bot+chat shares (None: the console).

    Hosts may name a destination differently; the service only knows the URL or the
    token and chat, so that is what is hashed (and never stored).
    """
    if isinstance(dest, DiscordDestination):
        thread = "" if dest.thread_id is None else str(dest.thread_id)
        return digest("discord", dest.url.reveal(), thread)
    if isinstance(dest, TelegramDestination):
        # Telegram limits a chat (and a bot), not a forum topic: the thread is left out
        return digest("telegram", dest.token.reveal(), str(dest.chat_id))
    return None
