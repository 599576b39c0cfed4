"""The outbox rows: order, idempotent enqueue, settling, rescheduling, counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from logwatch.delivery import outbox
from logwatch.models import Alert
from logwatch.state import State
from tests.fakeapi import make_alert


def test_pending_in_order_and_enqueue_is_idempotent(tmp_path: Path) -> None:
    """Rows come back in insertion order; the same alert id is not added twice."""
    state = State(tmp_path)
    with state.transaction() as conn:
        assert outbox.enqueue(conn, [make_alert(n, to=("a", "b")) for n in range(5)]) == 10
        assert outbox.enqueue(conn, [make_alert(3, to=("a",))]) == 0
    rows = outbox.pending(state.conn, "a", 3)
    assert [r.alert.title for r in rows] == ["event 0", "event 1", "event 2"]
    assert outbox.pending_count(state.conn, "b") == 5
    state.close()


def test_pending_reuses_the_alerts_it_is_given(tmp_path: Path) -> None:
    """A row read again takes its alert from ``known`` (not decoded twice); the rest are read."""
    state = State(tmp_path)
    with state.transaction() as conn:
        outbox.enqueue(conn, [make_alert(n, to=("a",)) for n in range(3)])
    first, second, third = outbox.pending(state.conn, "a", 3)
    known = {first.seq: make_alert(9, title="already decoded")}
    again = outbox.pending(state.conn, "a", 3, known=known)
    assert again[0].alert is known[first.seq]
    assert [r.alert for r in again[1:]] == [second.alert, third.alert]
    state.close()


def test_pending_walks_the_index(tmp_path: Path) -> None:
    """The sender's read is an index search in seq order: no table scan, no sort."""
    state = State(tmp_path)
    statements: list[str] = []
    state.conn.set_trace_callback(statements.append)
    outbox.pending(state.conn, "a", 10)
    state.conn.set_trace_callback(None)
    (select,) = [s for s in statements if s.startswith("SELECT")]  # parameters filled in
    details = " ".join(str(row[-1]) for row in
                       state.conn.execute(f"EXPLAIN QUERY PLAN {select}").fetchall())
    assert "USING INDEX outbox_pending (destination=? AND status=?)" in details
    assert "TEMP B-TREE" not in details
    state.close()


def test_finish_and_counts(tmp_path: Path) -> None:
    """Delivered, dead (with its reason) and skipped rows leave the pending list."""
    state = State(tmp_path)
    with state.transaction() as conn:
        outbox.enqueue(conn, [make_alert(n, to=("a",)) for n in range(4)])
        seqs = [r.seq for r in outbox.pending(conn, "a", 10)]
        outbox.finish(conn, seqs[:1], "delivered")
        outbox.finish(conn, seqs[1:2], "dead", "unknown webhook")
        outbox.finish(conn, seqs[2:3], "skipped", "below min_severity")
        outbox.finish(conn, seqs[:1], "dead", "too late")  # a settled row stays settled
    assert outbox.counts(state.conn) == {"a": {"pending": 1, "delivered": 1, "dead": 1,
                                               "skipped": 1}}
    assert outbox.last_dead(state.conn, "a") == "unknown webhook"
    assert [r.seq for r in outbox.pending(state.conn, "a", 10)] == seqs[3:]
    state.close()


def test_finish_closes_the_rows_given_and_only_those(tmp_path: Path) -> None:
    """Rows closed together need not be neighbours; each counts an attempt once, and a row not
    given stays pending."""
    state = State(tmp_path)
    with state.transaction() as conn:
        outbox.enqueue(conn, [make_alert(n, to=("a", "b")) for n in range(10)])
        seqs = [r.seq for r in outbox.pending(conn, "a", 10)]
        outbox.finish(conn, [s for i, s in enumerate(seqs) if i != 4], "delivered")
        outbox.finish(conn, [], "dead", "nothing")
    assert outbox.counts(state.conn)["a"] == {"pending": 1, "delivered": 9, "dead": 0,
                                              "skipped": 0}
    assert outbox.counts(state.conn)["b"]["pending"] == 10
    attempts = dict(state.conn.execute("SELECT seq, attempts FROM outbox WHERE destination = 'a'"))
    assert attempts == {s: 0 if i == 4 else 1 for i, s in enumerate(seqs)}
    state.close()


def test_finish_closes_more_rows_than_one_statement_takes(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows beyond :data:`outbox.FINISH_MOST` are closed by the next statement, all of them."""
    monkeypatch.setattr(outbox, "FINISH_MOST", 3)
    state = State(tmp_path)
    with state.transaction() as conn:
        outbox.enqueue(conn, [make_alert(n, to=("a",)) for n in range(8)])
        seqs = [r.seq for r in outbox.pending(conn, "a", 8)]
        outbox.finish(conn, iter(seqs[:7]), "dead", "gone")
    assert [r.seq for r in outbox.pending(state.conn, "a", 8)] == seqs[7:]
    assert outbox.counts(state.conn)["a"]["dead"] == 7
    state.close()


def test_a_row_read_soon_after_it_was_queued_takes_the_queued_alert(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch
                                                                    ) -> None:
    """The alert queued lately is the one a read returns (not decoded again from its JSON),
    equal to the decoded one; once it has left the recent ones, rows are decoded."""
    monkeypatch.setattr(outbox, "RECENT_MAX", 4)
    monkeypatch.setattr(outbox, "_RECENT", {})
    state = State(tmp_path)
    alerts = [make_alert(n, to=("a",), fields={"n": str(n), "user": "röot"}) for n in range(6)]
    with state.transaction() as conn:
        outbox.enqueue(conn, alerts)
    rows = outbox.pending(state.conn, "a", 10)
    assert [r.alert for r in rows] == alerts
    assert [r.alert is a for r, a in zip(rows, alerts, strict=True)] == [False] * 2 + [True] * 4
    for row in rows:
        assert row.alert == Alert.from_json(row.alert.to_json())
    state.close()


def test_alerts_with_long_lines_are_not_kept_among_the_recent_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The recent alerts' memory is bounded whatever the lines: 256 alerts of 64 KiB lines
    would hold over 100 MB. A long one is decoded from its row again, the same alert."""
    monkeypatch.setattr(outbox, "_RECENT", {})
    state = State(tmp_path)
    short = make_alert(1, to=("a",))
    long = make_alert(2, to=("a",), line="x" * outbox.RECENT_TEXT_MOST)
    with state.transaction() as conn:
        outbox.enqueue(conn, [short, long])
    rows = outbox.pending(state.conn, "a", 10)
    assert [r.alert for r in rows] == [short, long]
    assert [r.alert is a for r, a in zip(rows, [short, long], strict=True)] == [True, False]
    state.close()


def test_reschedule_counts_attempts_only_for_failures(tmp_path: Path) -> None:
    """A backoff counts an attempt; a 429 wait does not."""
    state = State(tmp_path)
    with state.transaction() as conn:
        outbox.enqueue(conn, [make_alert(1, to=("a",))])
        (row,) = outbox.pending(conn, "a", 1)
        outbox.reschedule(conn, row.seq, 123.0, "Discord answered 503")
        outbox.reschedule(conn, row.seq, 124.0, "rate limited", attempt=False)
    (row,) = outbox.pending(state.conn, "a", 1)
    assert (row.attempts, row.next_try) == (1, 124.0)
    state.close()


def test_prune_forgets_old_delivered_rows_but_keeps_dead_and_pending(tmp_path: Path) -> None:
    """The outbox stays small: old delivered/skipped rows go, dead and pending rows stay."""
    state = State(tmp_path)
    with state.transaction() as conn:
        outbox.enqueue(conn, [make_alert(n, to=("d",)) for n in range(4)], now=0.0)
        seqs = [seq for (seq,) in conn.execute("SELECT seq FROM outbox ORDER BY seq")]
        outbox.finish(conn, seqs[:1], "delivered", now=100.0)
        outbox.finish(conn, seqs[1:2], "skipped", now=100.0)
        outbox.finish(conn, seqs[2:3], "dead", "unknown webhook", now=100.0)
    with state.transaction() as conn:
        assert outbox.prune(conn, older_than=50.0) == 0
        assert outbox.prune(conn, older_than=200.0) == 2
        left = dict(conn.execute("SELECT seq, status FROM outbox").fetchall())
    state.close()
    assert left == {seqs[2]: "dead", seqs[3]: "pending"}
