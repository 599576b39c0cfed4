"""The sender's side of fleet dedup, unit by unit: the owner's summary, the status line."""

from __future__ import annotations

from logwatch.commands.status import format_fleet
from logwatch.fleet.claims import Tally
from logwatch.fleet.sending import fleet_summary
from tests.fakeapi import make_alert


def test_the_owner_summary_counts_every_host() -> None:
    """Local hits plus the tally; the title names the hosts, the message lists them."""
    summary = make_alert(1, kind="summary", title="2 more 'SSH failure from 1.2.3.4' suppressed",
                         message="2 more 'SSH failure from 1.2.3.4' suppressed at 10:00:00",
                         count=2, fields={"key": "1.2.3.4"})
    out = fleet_summary(summary, Tally("own", "web-1", (("web-2", 3), ("web-3", 1))))
    assert out.count == 6
    assert out.title == "6 more 'SSH failure from 1.2.3.4' on 3 hosts"
    assert out.message.endswith("'SSH failure from 1.2.3.4' also seen on 2 hosts "
                                "(web-2, web-3): 4 hits.")
    assert out.fields == {"key": "1.2.3.4", "hosts": "3"}


def test_status_shows_the_link_and_its_trouble() -> None:
    """Connected with latency; or unavailable since, with the last error."""
    up = {"url": "redis://10.0.0.5:6379/0", "namespace": "logwatch", "connected": True,
          "latency_ms": 0.4, "last_error": None, "failed_open": 0}
    assert format_fleet(up) == "fleet: redis://10.0.0.5:6379/0 (namespace logwatch) " \
                               "connected, 0.4 ms"
    down = {**up, "connected": False, "down_since": 1_700_000_000.0,
            "last_error": "ConnectionError: refused", "failed_open": 7}
    text = format_fleet(down)
    assert "UNAVAILABLE since" in text and "ConnectionError: refused" in text
    assert "duplicates possible): 7" in text
    assert "no link state yet" in format_fleet(None)
