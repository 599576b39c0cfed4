"""What the outbox's unique index costs a commit, with hashed ids and with ordered ones.

    python bench/outbox_index.py [--rows 300000] [--commits 40] [--alerts 83] [--policy 190]
                                 [--gap 0.4] [--streams 7]

Two state databases (logwatch's own schema and settings, WAL copied back by a
``Checkpointer`` thread every second, as the daemon did when this was measured), each
filled with ``--rows`` delivered rows (a server keeps 7 days of them), then committed to
in turns, ``--gap`` seconds apart for each: ``--alerts`` new alerts of one followed file
(``outbox.enqueue``) and ``--policy`` policy rows, as the daemon commits at 10,000
lines/s. One database gets the hashed ids line alerts had before (``alert_id``), the
other the ordered ones (``line_alert_id``: the line's offset ahead of the hash), its old
rows from ``--streams`` earlier files (rotated logs, each from offset 0). Prints the
thread CPU of each commit (``BEGIN`` to ``COMMIT``): the median and the mean.

Why: a hashed id puts each new row on a random page of the index, which on a big
outbox is a page read and written per alert; ordered ids put a file's new rows side
by side.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from logwatch.delivery import outbox
from logwatch.models import Alert, alert_id, line_alert_id
from logwatch.state import Checkpointer, State

LINE = "Nov 29 19:18:53 web1 sshd[4242]: Failed password for root from 203.0.113.{} port 4{} ssh2"
#: bytes between two alerted lines (a line of ~120 bytes, one in 13 alerts)
STEP = 1560

MakeId = Callable[[str, str, str], str]


def hashed(kind: str, rule: str, key: str) -> str:
    """The id line alerts had before round 7: the hash alone."""
    return alert_id(kind, rule, key)


def alert(make_id: MakeId, stream: str, offset: int, now: float,
          to: tuple[str, ...] = ("discord",)) -> Alert:
    """The alert of the line at ``offset`` of ``stream``, its id made by ``make_id``."""
    key = f"{stream}@{offset}"
    return Alert(id=make_id("alert", f"rule{offset % 50}", key), kind="alert",
                 rule=f"rule{offset % 50}", severity="warning", title=f"ssh failures {offset}",
                 message="5 failed logins", source="auth", host="web1", time=now,
                 line=LINE.format(offset % 250, offset % 9999), fields={"ip": "203.0.113.1"},
                 to=to)


def fill(state: State, make_id: MakeId, rows: int, streams: int,
         to: tuple[str, ...] = ("discord",)) -> None:
    """``rows`` delivered rows, of alerts from ``streams`` files one after the other."""
    per = max(1, rows // streams)
    now = time.time()
    for start in range(0, rows, 5000):
        batch = [alert(make_id, f"803:{1000 + n // per}:fp:0", (n % per) * STEP, now, to)
                 for n in range(start, min(rows, start + 5000))]
        with state.transaction() as conn:
            outbox.enqueue(conn, batch, now=now)
            conn.execute("UPDATE outbox SET status = 'delivered', done = ? "
                         "WHERE status = 'pending'", (now,))
    state.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class Side:
    """One database and the ids it gets."""

    def __init__(self, where: Path, make_id: MakeId, rows: int, streams: int,
                 policy: int) -> None:
        self.state = State(where)
        self.checkpointer = Checkpointer(self.state, 1.0)
        self.make_id = make_id
        self.policy = policy
        self.offset, self.round = 0, 0
        self.times: list[float] = []
        fill(self.state, make_id, rows, streams)

    def commit(self, alerts: int) -> None:
        """One commit of ``alerts`` new alerts and the policy rows, its thread CPU kept."""
        now = time.time()
        stream = "803:2000:fp:0"
        batch = [alert(self.make_id, stream, (self.offset + n) * STEP, now) for n in range(alerts)]
        self.offset += alerts
        self.round += 1
        values = [("policy", f"T/rule{n % 50}/203.0.113.{n}/{self.round}", f"[{now},{n}]")
                  for n in range(self.policy)]
        began = time.thread_time()
        with self.state.transaction() as conn:
            outbox.enqueue(conn, batch, now=now)
            conn.executemany("INSERT INTO kv (ns, key, value) VALUES (?, ?, ?) ON CONFLICT "
                             "(ns, key) DO UPDATE SET value = excluded.value", values)
        self.times.append(time.thread_time() - began)

    def close(self) -> None:
        """Stop the checkpointer, close the database."""
        self.checkpointer.stop()
        self.state.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--commits", type=int, default=40, help="each; the first 2 are warm-up")
    parser.add_argument("--alerts", type=int, default=83)
    parser.add_argument("--policy", type=int, default=190)
    parser.add_argument("--gap", type=float, default=0.4)
    parser.add_argument("--streams", type=int, default=7)
    args = parser.parse_args()
    if args.commits < 3:
        parser.error("--commits: at least 3 (the first 2 are not counted)")
    with tempfile.TemporaryDirectory() as tmp:
        sides = {name: Side(Path(tmp) / name, make_id, args.rows, args.streams, args.policy)
                 for name, make_id in (("hashed", hashed), ("ordered", line_alert_id))}
        for turn in range(args.commits):
            # each goes first in every other turn: no side always commits after a sleep of its
            # own while the other's pages are the warm ones
            for side in list(sides.values())[::1 if turn % 2 else -1]:
                time.sleep(args.gap / len(sides))
                side.commit(args.alerts)
        print(f"{args.rows:,} rows, {args.alerts} alerts + {args.policy} policy rows "
              f"a commit, {args.commits} commits each, {args.gap}s apart")
        for name, side in sides.items():
            ms = [t * 1000 for t in side.times[2:]]
            print(f"{name:>8} ids: commit median {statistics.median(ms):.2f} ms, "
                  f"mean {statistics.fmean(ms):.2f} ms")
            side.close()


if __name__ == "__main__":
    main()
