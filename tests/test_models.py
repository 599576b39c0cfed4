"""The values that flow: an alert's outbox form, a line alert's id."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logwatch.models import Alert, Chunk, alert_id, line_alert_id, line_order


def test_alert_json_round_trip_keeps_every_field() -> None:
    """to_json writes every field (fields as an object, to as a list); from_json reads it back."""
    alert = Alert(id="a1", kind="match", rule="ssh", severity="warning", title="ssh from 1.2.3.4",
                  message="é <b>", source="auth", host="web-1", time=1.5, line="sshd[1]: x",
                  fields={"ip": "1.2.3.4"}, count=3, to=("oncall", "ops"))
    data = json.loads(alert.to_json())
    assert data == {"id": "a1", "kind": "match", "rule": "ssh", "severity": "warning",
                    "title": "ssh from 1.2.3.4", "message": "é <b>", "source": "auth",
                    "host": "web-1", "time": 1.5, "line": "sshd[1]: x",
                    "fields": {"ip": "1.2.3.4"}, "count": 3, "to": ["oncall", "ops"]}
    assert "é" in alert.to_json()  # not escaped: the outbox keeps text as it is
    assert Alert.from_json(alert.to_json()) == alert


def test_alert_json_read_back_whatever_the_order_of_its_keys() -> None:
    """Rows whose keys are not to_json's order, or lack the defaulted ones (older rows, a
    hand-edited state): read by name, the same alert."""
    alert = Alert(id="a1", kind="match", rule="ssh", severity="warning", title="t",
                  message="m", source="auth", host="web-1", time=1.5, line="x",
                  fields={"ip": "1.2.3.4"}, count=3, to=("ops",))
    data = json.loads(alert.to_json())
    assert Alert.from_json(json.dumps(dict(reversed(data.items())))) == alert
    short = {k: v for k, v in data.items() if k not in ("line", "fields", "count", "to")}
    assert Alert.from_json(json.dumps(short)) == alert._replace(line="", fields={}, count=1,
                                                                to=())


_TEXT = st.text(st.characters(codec=None), max_size=20)


@given(_TEXT, _TEXT, st.floats(), st.dictionaries(_TEXT, _TEXT, max_size=3),
       st.integers(), st.lists(_TEXT, max_size=3))
def test_alert_json_is_what_json_dumps_writes(title: str, line: str, t: float,
                                              fields: dict[str, str], count: int,
                                              to: list[str]) -> None:
    """The outbox form, byte for byte, is ``json.dumps`` of the fields in their order (the
    senders' cache of queued alerts is keyed by it): hostile text, odd floats, big ints."""
    alert = Alert(id="a1", kind="alert", rule="r", severity="info", title=title, message=title,
                  source="s", host="h", time=t, line=line, fields=fields, count=count,
                  to=tuple(to))
    data = alert._asdict()
    data["fields"] = dict(fields)
    assert alert.to_json() == json.dumps(data, ensure_ascii=False, separators=(",", ":"))


@given(st.one_of(st.none(), st.integers(), st.booleans(), _TEXT),
       st.lists(st.one_of(st.booleans(), st.integers(), st.floats(), _TEXT), max_size=2))
def test_alert_json_of_values_a_damaged_row_can_carry(value: object, to: list[object]) -> None:
    """A saved row read back with a null, a number or a flag where text belongs, or odd
    destinations (``(1,)`` equals ``(True,)``): still what json.dumps writes, not a crash."""
    alert = Alert(id="a1", kind="alert", rule="r", severity="info", title="t", message="m",
                  source=value, host="h", time=1.0, line=value, to=tuple(to))  # type: ignore[arg-type]
    data = alert._asdict()
    data["fields"] = {}
    assert alert.to_json() == json.dumps(data, ensure_ascii=False, separators=(",", ":"))


_STREAM = st.text("0123456789abcdef:-", min_size=1, max_size=40)
_OFFSET = st.integers(min_value=0, max_value=2**63 - 1)
_RULE = st.text(min_size=1, max_size=20)


@given(_STREAM, _OFFSET, _OFFSET, _RULE, _RULE)
def test_a_file_streams_line_alert_ids_sort_as_its_lines_come(stream: str, a: int, b: int,
                                                             rule_a: str, rule_b: str) -> None:
    """So that a file's new alerts go side by side into the outbox's unique index (a hash
    alone put each on a page of its own), whatever the rules that fired."""
    first, second = (Chunk("s", "f", b"", stream, offset).line_key(0) for offset in sorted((a, b)))
    if a != b:
        assert line_alert_id("alert", rule_a, first) < line_alert_id("alert", rule_b, second)
        assert line_alert_id("fleet", rule_a, first) < line_alert_id("fleet", rule_b, second)


@given(st.integers(min_value=0, max_value=2**64 - 1), st.integers(min_value=0, max_value=2**64 - 1),
       st.integers(min_value=0, max_value=3))
def test_journal_line_alert_ids_sort_as_the_entries_seqnums(a: int, b: int, index: int) -> None:
    """A journal line's key is its entry's cursor, whose ``i=`` is the journal's seqnum."""
    def key(seqnum: int) -> str:
        cursor = f"s=9f0c;i={seqnum:x};b=77aa;m=12f;t=5e3a;x=c0de"
        return Chunk("j", "journal", b"", "journal", 0, {0: cursor if index == 0 else
                                                          f"{cursor}#{index}"}).line_key(0)
    if a < b:
        assert line_alert_id("alert", "r", key(a)) < line_alert_id("alert", "r", key(b))


def test_a_line_alert_id_is_its_order_then_the_whole_hash() -> None:
    """No new collision risk: the hash of everything that made the alert is there whole;
    and a key without a known order (a cursor without ``i=``) gets the hash alone."""
    key = "803:1234:ab12:0@5000"
    assert line_alert_id("alert", "ssh", key) == "31388" + alert_id("alert", "ssh", key)
    assert line_order("journal:s=9f0c;b=77aa;m=12f") == ""
    assert line_alert_id("alert", "r", "journal:s=9f0c") == alert_id("alert", "r", "journal:s=9f0c")
    assert [line_order(f"x@{n}") for n in (0, 15, 16, 255, 256)] == ["00", "0f", "110", "1ff",
                                                                      "2100"]
    assert line_order("journal:s=1;i=000f;b=2") == line_order("journal:s=1;i=f;b=2") == "0f"


@given(st.sampled_from(["alert", "fleet", "resolved"]), _TEXT, _TEXT)
def test_a_line_alert_ids_hash_is_alert_id_of_its_parts(kind: str, rule: str, key: str) -> None:
    """The hash of a rule's part taken once and copied per alert gives :func:`alert_id`'s
    digest of the three parts joined, surrogates included, for every rule and kind."""
    for _ in range(2):  # the second time from the hash kept for the rule
        assert line_alert_id(kind, rule, key) == line_order(key) + alert_id(kind, rule, key)


@given(_STREAM, _OFFSET, _RULE, _STREAM, _OFFSET, _RULE)
def test_line_alert_ids_are_replay_stable_and_distinct(stream: str, offset: int, rule: str,
                                                       stream2: str, offset2: int,
                                                       rule2: str) -> None:
    """The same line read again makes the same id (the unique index ignores it); another
    rule, line or stream makes another."""
    key, key2 = f"{stream}@{offset}", f"{stream2}@{offset2}"
    same = line_alert_id("alert", rule, key) == line_alert_id("alert", rule2, key2)
    assert same == ((rule, key) == (rule2, key2))
    assert line_alert_id("alert", rule, key) == line_alert_id("alert", rule, key)
    assert line_alert_id("alert", rule, key) != line_alert_id("fleet", rule, key)


@given(st.text(max_size=200))
def test_a_line_alert_id_is_short_plain_ascii_whatever_the_key(key: str) -> None:
    """Keys come from file names' streams and journal cursors: an id stays bounded text."""
    made = line_alert_id("alert", "r", key)
    assert made.isascii() and made.isalnum() and 24 <= len(made) <= 17 + 24
    assert made.endswith(alert_id("alert", "r", key))


def test_an_alert_is_immutable_and_copied_with_changes() -> None:
    """An alert never changes once made (the outbox and the senders share it): its fields
    cannot be set, one without ``fields`` shares a read-only empty mapping, and a copy
    with other destinations is ``_replace``'s, equal to the original but for them."""
    alert = Alert(id="a1", kind="alert", rule="r", severity="info", title="t", message="m",
                  source="s", host="h", time=1.0, to=("a", "b"))
    with pytest.raises(AttributeError):
        alert.title = "changed"  # type: ignore[misc]
    assert alert.fields == {}
    with pytest.raises(TypeError):
        alert.fields["ip"] = "1.2.3.4"  # type: ignore[index]
    copy = alert._replace(to=("a",))
    assert copy.to == ("a",) and alert.to == ("a", "b")
    assert copy != alert and copy._replace(to=("a", "b")) == alert
    assert copy.to_json() == alert.to_json().replace('["a","b"]', '["a"]')
