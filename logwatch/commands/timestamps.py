"""When a log line was written, read from its prefix.

Understood prefixes:

* syslog (RFC 3164): ``Dec 10 06:55:46 host ...``. The year is not written: it is
  the current year, or the one before when that date would lie more than a day in
  the future (a December log replayed in January). The day of grace keeps clock
  skew and time zones from sending today's lines a year back.
* ISO 8601 / RFC 3339: ``2026-02-25T14:34:10.123+01:00``, ``2026-02-25 14:34:10``
  (journalctl ``-o short-iso``, rsyslog's high-precision format), optionally
  after an RFC 5424 ``<PRI>1`` header.
* Apache error log: ``[Sun Dec 04 04:47:44 2005]``, ``[Thu Oct 29 20:01:02.123456 2015]``.
* nginx error log: ``2015/10/29 20:01:02``.

A time without a zone is local time, as the machine that wrote it meant it.
"""

from __future__ import annotations

import time
from datetime import datetime

import regex

#: a date this far in the future is last year's
FUTURE_GRACE = 86400.0

_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_SYSLOG = regex.compile(
    r"(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) (?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)"
    r"(?P<frac>\.\d+)?(?!\d)")
_ISO = regex.compile(
    r"(?:<\d{1,3}>\d{0,2} ?)?"
    r"(?P<date>\d{4}-\d\d-\d\d)[T ](?P<time>\d\d:\d\d:\d\d(?:[.,]\d{1,9})?)"
    r"(?P<tz>Z|[+-]\d\d:?\d\d)?(?![\d:])")
_APACHE = regex.compile(
    r"\[[A-Z][a-z]{2} (?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) "
    r"(?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)(?P<frac>\.\d+)? (?P<year>\d{4})\]")

_NGINX = regex.compile(
    r"(?P<year>\d{4})/(?P<mon>\d\d)/(?P<day>\d\d) (?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)"
    r"(?P<frac>)(?![\d:.])")


def parse_timestamp(line: str, *, now: float | None = None) -> float | None:
    """The Unix time at the start of ``line``, or ``None`` if it has no known prefix.

    ``now`` decides the year of a syslog date (default: the current time).
    """
    if m := _SYSLOG.match(line):
        return _syslog_time(m, time.time() if now is None else now)
    if m := _ISO.match(line):
        return _iso_time(m)
    if m := _APACHE.match(line):
        return _local(int(m["year"]), m)
    if m := _NGINX.match(line):
        return _local(int(m["year"]), m)
    return None


def _syslog_time(m: regex.Match[str], now: float) -> float | None:
    year = time.localtime(now).tm_year
    t = _local(year, m)
    if t is not None and t > now + FUTURE_GRACE:
        return _local(year - 1, m)
    if t is None and m["mon"] == "Feb" and m["day"] == "29":
        # a leap day in a common year: the latest leap year before it wrote the line
        leap = next(y for y in range(year - 1, year - 9, -1) if y % 4 == 0 and (
            y % 100 != 0 or y % 400 == 0))
        return _local(leap, m)
    return t


def _local(year: int, m: regex.Match[str]) -> float | None:
    month = int(m["mon"]) if m["mon"].isdigit() else _MONTHS.get(m["mon"])
    if month is None:
        return None
    try:
        t = datetime(year, month, int(m["day"]), int(m["h"]), int(m["m"]), int(m["s"]))
    except ValueError:  # Feb 30, 25:00:00 ...
        return None
    return t.timestamp() + (float(m["frac"]) if m["frac"] else 0.0)


def _iso_time(m: regex.Match[str]) -> float | None:
    clock = m["time"].replace(",", ".")
    if "." in clock:  # fromisoformat takes at most microseconds
        whole, frac = clock.split(".")
        clock = f"{whole}.{frac[:6].ljust(6, '0')}"
    tz = m["tz"] or ""
    if tz and tz != "Z" and ":" not in tz:
        tz = f"{tz[:3]}:{tz[3:]}"
    try:
        return datetime.fromisoformat(f"{m['date']}T{clock}{tz}").timestamp()
    except ValueError:
        return None
