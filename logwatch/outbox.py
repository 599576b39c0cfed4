"""The outbox: one row per (alert, destination), delivered in ``seq`` order.

Rows are added in the same transaction that advances the source that produced
them; an alert id derived from the same line again is ignored, not doubled.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable

from logwatch.models import Alert


def enqueue(conn: sqlite3.Connection, alerts: Iterable[Alert], *, now: float | None = None) -> int:
    """Add a pending row per alert and destination in ``alert.to``; return how many were new."""
    created = time.time() if now is None else now
    added = 0
    for alert in alerts:
        payload = alert.to_json()
        for destination in alert.to:
            cur = conn.execute(
                "INSERT OR IGNORE INTO outbox (alert_id, destination, alert, created) "
                "VALUES (?, ?, ?, ?)",
                (alert.id, destination, payload, created),
            )
            added += cur.rowcount
    return added


def counts(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """``{destination: {"pending": n, "delivered": n, "dead": n}}``."""
    out: dict[str, dict[str, int]] = {}
    rows = conn.execute("SELECT destination, status, count(*) FROM outbox GROUP BY 1, 2")
    for destination, status, n in rows:
        out.setdefault(destination, {"pending": 0, "delivered": 0, "dead": 0})[status] = n
    return out
