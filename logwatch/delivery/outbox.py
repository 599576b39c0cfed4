"""The outbox: one row per (alert, destination), delivered in ``seq`` order.

Rows are added in the same transaction that advances the source that produced
them; an alert id derived from the same line again is ignored, not doubled.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from logwatch.models import Alert

#: a row's life: pending -> delivered | dead (the service refused it) | skipped (below
#: the destination's min_severity)
Status = Literal["pending", "delivered", "dead", "skipped"]


#: how many recently queued alerts :data:`_RECENT` keeps (a sender reads at most 20 rows at a
#: time, the newest ones when it keeps up; behind a backlog it decodes)
RECENT_MAX = 256
#: ... of an outbox form at most this long (a 64 KiB log line is decoded again rather than
#: kept: the cache's memory stays a few MiB whatever the lines)
RECENT_TEXT_MOST = 8192
#: alerts queued lately, by their outbox form: a sender reading one of their rows soon after
#: takes the alert itself rather than decoding the same JSON back (an alert is frozen, and
#: the policy gives it a fields dict of its own, so it is what ``from_json`` would make).
#: Written by the thread that queues, under the lock; read by any.
_RECENT: dict[str, Alert] = {}
_RECENT_LOCK = threading.Lock()


def enqueue(conn: sqlite3.Connection, alerts: Iterable[Alert], *, now: float | None = None) -> int:
    """Add a pending row per alert and destination in ``alert.to``; return how many were new."""
    created = time.time() if now is None else now
    rows: list[tuple[str, str, str, float]] = []
    recent: list[tuple[str, Alert]] = []
    for alert in alerts:
        payload = alert.to_json()
        if len(payload) <= RECENT_TEXT_MOST:
            recent.append((payload, alert))
        if len(to := alert.to) == 1:  # the usual: one row, without a generator per alert
            rows.append((alert.id, to[0], payload, created))
        else:
            rows.extend((alert.id, destination, payload, created) for destination in to)
    if not rows:
        return 0
    _remember(recent)
    # one statement for the batch; rows keep their order, so seq stays the delivery order
    cur = conn.executemany(
        "INSERT OR IGNORE INTO outbox (alert_id, destination, alert, created) VALUES (?, ?, ?, ?)",
        rows,
    )
    return cur.rowcount  # summed over the rows; an ignored duplicate adds 0


def _remember(recent: list[tuple[str, Alert]]) -> None:
    """Keep the newest :data:`RECENT_MAX` of ``recent`` in :data:`_RECENT`, oldest out first."""
    with _RECENT_LOCK:
        _RECENT.update(recent[-RECENT_MAX:])  # a burst's batch: its tail, not a dict of it all
        while len(_RECENT) > RECENT_MAX:
            del _RECENT[next(iter(_RECENT))]


def _decoded(text: str) -> Alert:
    """The alert of a row's JSON: the one queued lately, or decoded."""
    return _RECENT.get(text) or Alert.from_json(text)


def counts(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """``{destination: {"pending": n, "delivered": n, "dead": n, "skipped": n}}``."""
    out: dict[str, dict[str, int]] = {}
    rows = conn.execute("SELECT destination, status, count(*) FROM outbox GROUP BY 1, 2")
    for destination, status, n in rows:
        out.setdefault(destination, {"pending": 0, "delivered": 0, "dead": 0, "skipped": 0})[
            status] = n
    return out


@dataclass(frozen=True, slots=True)
class Row:
    """A pending outbox row."""

    seq: int
    alert: Alert
    attempts: int
    next_try: float


def pending(conn: sqlite3.Connection, destination: str, limit: int, *,
            known: Mapping[int, Alert] | None = None) -> list[Row]:
    """The first ``limit`` pending rows of ``destination``, in delivery order.

    ``known``: alerts already decoded, by ``seq`` (a row's alert never changes), so that a
    row read again (it did not fit in the last message, or is retried) is not decoded again.
    The query walks the ``outbox_pending`` index (destination, status, seq): no sort.
    """
    rows = conn.execute(
        "SELECT seq, alert, attempts, next_try FROM outbox "
        "WHERE destination = ? AND status = 'pending' ORDER BY seq LIMIT ?",
        (destination, limit),
    )
    known = known or {}
    return [Row(seq, known.get(seq) or _decoded(alert), attempts, next_try)
            for seq, alert, attempts, next_try in rows]


def pending_count(conn: sqlite3.Connection, destination: str) -> int:
    """How many rows of ``destination`` wait."""
    row = conn.execute("SELECT count(*) FROM outbox WHERE destination = ? AND status = 'pending'",
                       (destination,)).fetchone()
    return int(row[0])


def recent_done(conn: sqlite3.Connection, destination: str, limit: int) -> list[float]:
    """When the last ``limit`` delivered rows of ``destination`` were marked (wall times, each
    once, newest first): the ends of the last requests that delivered them."""
    rows = conn.execute("SELECT done FROM outbox WHERE destination = ? AND status = 'delivered' "
                        "ORDER BY seq DESC LIMIT ?", (destination, limit))
    return list(dict.fromkeys(done for (done,) in rows if done is not None))


#: rows closed by one statement at most (a sender's batch is 20 at most: one statement)
FINISH_MOST = 100
_FINISH: dict[int, str] = {}


def finish(conn: sqlite3.Connection, seqs: Iterable[int], status: Status,
           reason: str | None = None, *, now: float | None = None) -> None:
    """Close rows: ``delivered``, ``dead`` (``reason`` says why) or ``skipped``."""
    done = time.time() if now is None else now
    every = tuple(seqs)
    for start in range(0, len(every), FINISH_MOST):
        part = every[start:start + FINISH_MOST]
        conn.execute(_finish_sql(len(part)), (status, reason, done, *part))


def _finish_sql(count: int) -> str:
    """The UPDATE that closes ``count`` rows: one statement, one walk of the table's b-tree."""
    sql = _FINISH.get(count)
    if sql is None:
        marks = ",".join("?" * count)
        sql = _FINISH[count] = (  # only "?" placeholders are formatted in
            "UPDATE outbox SET status = ?, error = coalesce(?, error), done = ?, "  # noqa: S608
            f"attempts = attempts + 1 WHERE seq IN ({marks}) AND status = 'pending'")
    return sql


def revise(conn: sqlite3.Connection, seq: int, alert: Alert) -> None:
    """Replace pending row ``seq``'s alert (the fleet owner's summary, once it holds the
    other hosts' tally: taken from the store, the tally exists nowhere else)."""
    conn.execute("UPDATE outbox SET alert = ? WHERE seq = ? AND status = 'pending'",
                 (alert.to_json(), seq))


def reschedule(conn: sqlite3.Connection, seq: int, next_try: float, error: str, *,
               attempt: bool = True) -> None:
    """Try row ``seq`` again at ``next_try`` (wall time); ``attempt`` counts a failed try."""
    conn.execute(
        "UPDATE outbox SET next_try = ?, error = ?, attempts = attempts + ? WHERE seq = ?",
        (next_try, error, 1 if attempt else 0, seq),
    )


def prune(conn: sqlite3.Connection, *, older_than: float) -> int:
    """Forget delivered and skipped rows finished before ``older_than``; dead rows stay.

    Safe for exactly-once: a replay after a crash re-derives alerts only from lines
    whose rows were never committed, never from rows this old.
    """
    cur = conn.execute("DELETE FROM outbox WHERE status IN ('delivered', 'skipped') AND done < ?",
                       (older_than,))
    return cur.rowcount


def last_dead(conn: sqlite3.Connection, destination: str) -> str | None:
    """Why the most recent dead row of ``destination`` died."""
    row = conn.execute("SELECT error FROM outbox WHERE destination = ? AND status = 'dead' "
                       "ORDER BY seq DESC LIMIT 1", (destination,)).fetchone()
    return None if row is None else row[0]

def clamp_next_try(conn: sqlite3.Connection, destination: str, latest: float) -> int:
    """Pending rows of ``destination`` due after ``latest`` (or never) become due at it."""
    cur = conn.execute("UPDATE outbox SET next_try = ? WHERE destination = ? AND "
                       "status = 'pending' AND NOT (next_try <= ?)", (latest, destination, latest))
    return cur.rowcount


def dead(conn: sqlite3.Connection, destination: str, limit: int) -> list[tuple[int, Alert]]:
    """The first ``limit`` dead rows of ``destination`` (seq, alert), oldest first."""
    rows = conn.execute("SELECT seq, alert FROM outbox WHERE destination = ? AND status = 'dead' "
                        "ORDER BY seq LIMIT ?", (destination, limit))
    return [(seq, Alert.from_json(alert)) for seq, alert in rows]


def requeue_dead(conn: sqlite3.Connection, destination: str) -> int:
    """Make the dead rows of ``destination`` pending again, in their order; how many."""
    cur = conn.execute("UPDATE outbox SET status = 'pending', attempts = 0, next_try = 0, "
                       "done = NULL WHERE destination = ? AND status = 'dead'", (destination,))
    return cur.rowcount
