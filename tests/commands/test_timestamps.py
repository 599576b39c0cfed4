"""Reading when a line was written from its prefix: syslog, ISO 8601, Apache."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from logwatch.commands.timestamps import parse_timestamp

#: 2026-11-28 03:00:00 local time: the "now" that decides syslog years
NOW = datetime(2026, 11, 28, 3, 0, 0).timestamp()


def local(*args: int) -> float:
    return datetime(*args).timestamp()  # type: ignore[arg-type, misc]


class TestSyslog:
    """``Mon dd HH:MM:SS``: no year written, so it is worked out from ``now``."""

    def test_a_date_this_year(self) -> None:
        """Earlier this year: this year."""
        line = "Nov  1 06:55:46 gw-2 sshd[24200]: Invalid user webmaster from 198.51.100.186"
        assert parse_timestamp(line, now=NOW) == local(2026, 11, 1, 6, 55, 46)

    def test_a_future_date_is_last_year(self) -> None:
        """December, read in November: last December."""
        line = "Dec 10 06:55:46 gw-2 sshd[24200]: Invalid user webmaster"
        assert parse_timestamp(line, now=NOW) == local(2025, 12, 10, 6, 55, 46)

    def test_a_little_in_the_future_stays_this_year(self) -> None:
        """Clock skew of hours is not a year: a day's grace."""
        assert parse_timestamp("Nov 28 20:00:00 host x", now=NOW) == local(2026, 11, 28, 20)
        assert parse_timestamp("Nov 29 04:00:00 host x", now=NOW) == local(2025, 11, 29, 4)

    def test_new_year(self) -> None:
        """A December line read on January 2nd is from the year before."""
        now = local(2027, 1, 2, 0, 0, 0)
        assert parse_timestamp("Dec 31 23:59:59 h x", now=now) == local(2026, 12, 31, 23, 59, 59)
        assert parse_timestamp("Jan  1 00:00:01 h x", now=now) == local(2027, 1, 1, 0, 0, 1)

    def test_leap_day_in_a_common_year(self) -> None:
        """Feb 29 read in 2026 was written in 2024."""
        assert parse_timestamp("Feb 29 12:00:00 h x", now=NOW) == local(2024, 2, 29, 12)

    def test_fractions(self) -> None:
        """rsyslog can add fractions of a second."""
        assert parse_timestamp("Nov  1 06:55:46.250 h x", now=NOW) == local(
            2026, 11, 1, 6, 55, 46) + 0.25

    @pytest.mark.parametrize("line", [
        "Feb 30 10:00:00 h impossible date",
        "Foo 10 10:00:00 h no such month",
        "Nov 10 25:00:00 h no such hour",
        "Nov 10 10:00:001 h too many digits",
        "hello world",
        "",
        "  Nov 10 10:00:00 indented",
    ])
    def test_not_a_timestamp(self, line: str) -> None:
        """Anything else: ``None``, never an exception."""
        assert parse_timestamp(line, now=NOW) is None


class TestIso:
    """ISO 8601 / RFC 3339 prefixes, with or without a zone."""

    @pytest.mark.parametrize(("line", "expected"), [
        ("2026-02-25T14:34:10Z sshd", datetime(2026, 2, 25, 14, 34, 10, tzinfo=UTC)),
        ("2026-02-25T14:34:10.123456+01:00 bastion-1 sshd[1]: x",
         datetime(2026, 2, 25, 14, 34, 10, 123456, tzinfo=timezone(timedelta(hours=1)))),
        ("2026-02-25T14:34:10+0100 x",
         datetime(2026, 2, 25, 14, 34, 10, tzinfo=timezone(timedelta(hours=1)))),
        ("2026-02-25T14:34:10,5-05:00 x",
         datetime(2026, 2, 25, 14, 34, 10, 500000, tzinfo=timezone(timedelta(hours=-5)))),
        ("2026-02-25T14:34:10.123456789Z nanoseconds",
         datetime(2026, 2, 25, 14, 34, 10, 123456, tzinfo=UTC)),
        ("<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47",
         datetime(2003, 10, 11, 22, 14, 15, 3000, tzinfo=UTC)),
    ])
    def test_with_zone(self, line: str, expected: datetime) -> None:
        """The zone written is the zone used."""
        assert parse_timestamp(line) == pytest.approx(expected.timestamp())

    def test_without_zone_is_local(self) -> None:
        """journalctl ``short-iso`` without offset, and ``YYYY-MM-DD HH:MM:SS``: local time."""
        assert parse_timestamp("2026-02-25 14:34:10 x") == local(2026, 2, 25, 14, 34, 10)

    def test_bad_dates(self) -> None:
        """A month 13 is not a date."""
        assert parse_timestamp("2026-13-25T14:34:10Z x") is None


def test_a_time_without_zone_is_the_machines_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """In Berlin, ``Nov  1 12:00:00`` is 11:00 UTC (and 13:00 UTC in July)."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        now = datetime(2026, 11, 28, tzinfo=UTC).timestamp()
        nov = datetime(2026, 11, 1, 11, tzinfo=UTC).timestamp()
        jul = datetime(2026, 7, 1, 10, tzinfo=UTC).timestamp()
        assert parse_timestamp("Nov  1 12:00:00 h x", now=now) == nov
        assert parse_timestamp("2026-07-01 12:00:00 x", now=now) == jul
    finally:
        monkeypatch.undo()
        time.tzset()


def test_apache_error_log() -> None:
    """``[Sun Dec 04 04:47:44 2005]`` carries its year."""
    line = "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2"
    assert parse_timestamp(line, now=NOW) == local(2005, 12, 4, 4, 47, 44)


@pytest.mark.corpus
def test_every_corpus_line_has_a_time() -> None:
    """All 2,000 lines of loghub's OpenSSH sample, Linux syslog and Apache logs parse."""
    from tests.helpers import CORPUS

    for name in ("OpenSSH_2k.log", "Linux_2k.log", "Apache_2k.log"):
        lines = (CORPUS / "loghub" / name).read_text(encoding="utf-8", errors="replace")
        missing = [x for x in lines.splitlines() if parse_timestamp(x, now=NOW) is None]
        assert missing == [], (name, missing[:3])


def test_nginx_error_log() -> None:
    """nginx writes ``2015/10/29 20:01:02`` (local time, year written)."""
    line = "2015/10/29 20:01:02 [error] 1234#0: *1 open() failed (2: No such file or directory)"
    assert parse_timestamp(line, now=NOW) == local(2015, 10, 29, 20, 1, 2)
    assert parse_timestamp("2015/13/29 20:01:02 [error] x", now=NOW) is None


def test_apache_24_error_log_with_microseconds_and_a_padded_day() -> None:
    """Apache 2.4: ``[Thu Oct 29 20:01:02.123456 2015]``; a one-digit day may be padded."""
    line = "[Thu Oct 29 20:01:02.123456 2015] [core:error] [pid 42] AH00037: x"
    assert parse_timestamp(line, now=NOW) == pytest.approx(local(2015, 10, 29, 20, 1, 2) + 0.123456)
    assert parse_timestamp("[Fri Oct  9 20:01:02 2015] [error] x", now=NOW) == local(
        2015, 10, 9, 20, 1, 2)
