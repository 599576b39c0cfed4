"""The values that flow: an alert's outbox form."""

from __future__ import annotations

import json

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
