"""Many values written at once: ``put_texts`` (pre-encoded) and ``put_values``."""

from __future__ import annotations

from pathlib import Path

from logwatch.state import State, encode, get_values, put_texts, put_values


def test_put_texts_writes_and_deletes_many_rows_in_two_statements(tmp_path: Path) -> None:
    state = State(tmp_path)
    with state.transaction() as conn:
        put_values(conn, "ns", [("a", 1), ("b", {"x": [1.5]}), ("c", "text")])
        put_values(conn, "other", [("a", 2)])
    with state.transaction() as conn:
        put_texts(conn, "ns", [("a", None), ("b", encode([2])), ("d", encode("new"))])
        put_texts(conn, "ns", [])
    with state.transaction() as conn:
        assert get_values(conn, "ns") == {"b": [2], "c": "text", "d": "new"}
        assert get_values(conn, "other") == {"a": 2}
    state.close()
