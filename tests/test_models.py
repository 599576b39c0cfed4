"""The values that flow: an alert's outbox form."""

from __future__ import annotations

import dataclasses
import json

from hypothesis import given
from hypothesis import strategies as st

from logwatch.models import Alert


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
    data = {f.name: getattr(alert, f.name) for f in dataclasses.fields(Alert)}
    data["fields"] = dict(fields)
    assert alert.to_json() == json.dumps(data, ensure_ascii=False, separators=(",", ":"))


@given(st.one_of(st.none(), st.integers(), st.booleans(), _TEXT),
       st.lists(st.one_of(st.booleans(), st.integers(), st.floats(), _TEXT), max_size=2))
def test_alert_json_of_values_a_damaged_row_can_carry(value: object, to: list[object]) -> None:
    """A saved row read back with a null, a number or a flag where text belongs, or odd
    destinations (``(1,)`` equals ``(True,)``): still what json.dumps writes, not a crash."""
    alert = Alert(id="a1", kind="alert", rule="r", severity="info", title="t", message="m",
                  source=value, host="h", time=1.0, line=value, to=tuple(to))  # type: ignore[arg-type]
    data = {f.name: getattr(alert, f.name) for f in dataclasses.fields(Alert)}
    data["fields"] = {}
    assert alert.to_json() == json.dumps(data, ensure_ascii=False, separators=(",", ":"))
