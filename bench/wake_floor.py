"""What one wake-up costs at the least on this machine, whatever the daemon does around it.

    python bench/wake_floor.py [--seconds 8] [--periods 20,50,90,200] [--rate 1000]
                               [--commits 2.5] [--posts 4.5]

A loop that wakes every ``period`` and does a growing part of the daemon's least work
on the lines a writer at ``--rate`` lines/s would have appended meanwhile (the
benchmark's lines, bench/generate.py), with the benchmark's 50 rules:

- ``wake``: wake up and go back to sleep, nothing else (what the machine charges a
  thread for a wake-up);
- ``sleep``: and take the lines that came (joined, as one read returns them);
- ``+ scan``: and run the Hyperscan line filter over those lines (one ``hs_scan``);
- ``+ match``: and run the matcher as the daemon does (filter, regex searches for the
  candidate lines' groups, decoding);
- ``+ policy``: and feed the hits to the policy as the daemon does (the context
  memory of the rules that take ``context``, a ``Hit`` per hit, ``Policy.feed``), a new
  policy per cell;
- ``+ commits``: and commit one row to a SQLite database in WAL mode,
  ``synchronous=NORMAL`` (the outbox's settings), ``--commits`` times a second (the
  daemon commits when an alert can go, not at every wake-up: about 2.5 a second at
  1,000 lines/s in bench/follow_cost.py);

and, in a second table, a sender's least work per request: wake ``--posts`` times a
second and POST one Discord message of ten embeds (prepared once) with the senders' own
HTTP client to a fake Discord on 127.0.0.1 (tests/fakeapi.py), keeping the connection,
and read the answer. No outbox rows read or marked, no rendering.

It prints the loop's CPU (its thread's, ``CLOCK_THREAD_CPUTIME_ID``) per wake-up and
as % of one core. No outbox rows, no policy rows saved, no rendering: the daemon
(bench/follow_cost.py) does all that on top, so its CPU at a given wake-up rate and
request rate can be no lower than the sum of a row of each table.

Why it matters: on a virtual machine sharing a busy host, memory left alone for a few
milliseconds is cold again, so the same work costs several times more after a sleep
than in a tight loop (a Hyperscan scan of 50 lines: about 15 us warm, 150 us after a
10 ms pause). The cost of following a trickle is then set by how often the daemon
wakes, nearly whatever it does once awake; and ``batch_wait``, which bounds a line's
latency, bounds how seldom it may wake.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import tomli_w

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from generate import generate  # noqa: E402
from run import DATA, rule_tables  # noqa: E402

from logwatch.config import Config, load_config  # noqa: E402
from logwatch.delivery.destinations.discord import render_embed  # noqa: E402
from logwatch.delivery.destinations.http import Http  # noqa: E402
from logwatch.matching.context import ContextMemory, newlines  # noqa: E402
from logwatch.matching.matcher import Matcher  # noqa: E402
from logwatch.models import Hit, LogLine  # noqa: E402
from logwatch.policy.policy import Policy  # noqa: E402
from tests.fakeapi import FakeAPI, make_alert  # noqa: E402

POOL_LINES = 200_000
STEPS = ("wake", "sleep", "+ scan", "+ match", "+ policy", "+ commits")


class Work:
    """The least work of one wake-up, up to a step of :data:`STEPS`."""

    def __init__(self, config: Config, db: sqlite3.Connection, commits_per_wake: float) -> None:
        self.config = config
        self.matcher = Matcher(config.rules)
        self.db = db
        self.commits_per_wake = commits_per_wake
        # a cell starts afresh: no policy windows, no remembered context, no commit owed
        self.policy = Policy(self.config, clock=time.time)
        self.memory = ContextMemory.of(self.config.rules, "floor")
        self.owed = 0.0
        self.commits = 0
        self.offset = 0

    def run(self, step: str, data: bytes) -> None:
        """Do ``step``'s work (and the steps before it) on ``data``."""
        at = STEPS.index(step)
        if at == STEPS.index("+ scan") and self.matcher.line_filter is not None:
            self.matcher.line_filter.lines(data)
        elif at == STEPS.index("+ match"):
            list(self.matcher.scan(data))
        elif at >= STEPS.index("+ policy"):
            self.feed(data)
        if at >= STEPS.index("+ commits"):
            self.commit()
        self.offset += len(data)

    def feed(self, data: bytes) -> None:
        """Match ``data`` and feed its hits to the policy, as ``Service._match`` does."""
        found = self.matcher.find(data, groups=True)
        lines = newlines(data, 0, len(data))
        hits = found.hits() if self.memory is None else self.memory.follow(found, data, lines)
        for start, text, rule, kind, fields in hits:
            line = LogLine(text, "floor", "floor.log", f"floor@{self.offset + start}")
            self.policy.feed(Hit(rule, fields, line, kind))

    def commit(self) -> None:
        """Commit one row when a commit is owed (``commits_per_wake`` a wake-up)."""
        self.owed += self.commits_per_wake
        if self.owed < 1:
            return
        self.owed -= 1
        self.commits += 1
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO kv VALUES ('checkpoint', ?)",
                            (str(self.commits),))


class Feed:
    """The lines a writer at ``rate`` appends between two wake-ups ``period`` apart, in turn."""

    def __init__(self, lines: Sequence[bytes], rate: float, period: float) -> None:
        self.lines = lines
        self.per_wake = max(1, round(rate * period))
        self.at = 0

    def next(self) -> bytes:
        """The next wake-up's lines, joined as one read returns them."""
        data = b"".join(self.lines[self.at:self.at + self.per_wake])
        self.at = (self.at + self.per_wake) % (len(self.lines) - self.per_wake)
        return data


def loop(period: float, seconds: float, work: Callable[[], None]) -> tuple[float, float]:
    """Wake every ``period`` for ``seconds``: (thread CPU per wake-up in us, % of a core)."""
    start, cpu, wakes = time.monotonic(), time.thread_time(), 0
    while time.monotonic() - start < seconds:
        time.sleep(period)
        work()
        wakes += 1
    used, wall = time.thread_time() - cpu, time.monotonic() - start
    return 1e6 * used / wakes, 100 * used / wall


def post_floor(seconds: float, per_s: float) -> tuple[float, float] | None:
    """:func:`loop` POSTing a message of ten embeds ``per_s`` times a second (None: a proxy
    is set in the environment, so the POSTs would not go the senders' direct way)."""
    if urllib.request.getproxies():
        return None
    with FakeAPI(discord_window=(1_000_000, 1.0)) as fake, Http() as http:
        url = httpx.URL(fake.discord_url() + "?wait=true")
        payload = {"embeds": [render_embed(make_alert(n)) for n in range(10)],
                   "allowed_mentions": {"parse": []}}
        body = json.dumps(payload).encode()

        def post() -> None:
            if http.post(url, body).status_code != 200:
                raise SystemExit(f"the fake Discord refused the message: {fake.violations}")
        return loop(1 / per_s, seconds, post)


def bench_config() -> Config:
    """bench/follow_cost.py's 50 rules, storms off as there."""
    tables, _ = rule_tables(BENCH / "extra_rules.toml")
    with tempfile.TemporaryDirectory(prefix="wake-floor-") as tmp:
        path = Path(tmp) / "floor.toml"
        settings = {"state_dir": str(Path(tmp) / "state"), "hostname": "bench",
                    "storm": {"rate": 10_000_000}}
        path.write_text(tomli_w.dumps({"logwatch": settings, "rules": tables}),
                        encoding="utf-8")
        return load_config(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure each step at each period and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0, help="per step and period")
    ap.add_argument("--periods", default="20,50,90,200", help="ms between wake-ups")
    ap.add_argument("--rate", type=float, default=1000.0, help="lines/s the writer appends")
    ap.add_argument("--commits", type=float, default=2.5,
                    help="commits/s of the last step (follow_cost.py's daemon: ~2.5 at 1k)")
    ap.add_argument("--posts", type=float, default=4.5,
                    help="POSTs/s of the second table (follow_cost.py's senders make ~4.5)")
    args = ap.parse_args(argv)
    pool = DATA / f"cost-pool-{POOL_LINES}.log"
    if not pool.exists():
        generate(pool, POOL_LINES)
    lines = pool.read_bytes().splitlines(keepends=True)
    with tempfile.TemporaryDirectory(prefix="wake-floor-") as tmp:
        db = sqlite3.connect(Path(tmp) / "floor.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)")
        db.isolation_level = ""  # `with db` makes one transaction per commit
        config = bench_config()
        periods = [float(p) / 1000 for p in args.periods.split(",")]
        print(f"{args.rate:,.0f} lines/s; {args.seconds:g} s per cell; thread CPU per "
              "wake-up, then % of one core\n")
        print("| step | " + " | ".join(f"every {p * 1000:g} ms" for p in periods) + " |")
        print("| --- |" + " ---: |" * len(periods))
        for step in STEPS:
            cells = []
            for period in periods:
                work = Work(config, db, args.commits * period)
                feed = Feed(lines, args.rate, period)
                us, share = loop(period, args.seconds,
                                 (lambda: None) if step == "wake"
                                 else lambda s=step, f=feed, w=work: w.run(s, f.next()))
                cells.append(f"{us:.0f} us, {share:.2f}%")
            print(f"| {step} | " + " | ".join(cells) + " |", flush=True)
        db.close()
    posts = post_floor(args.seconds, args.posts)
    cell = ("skipped: HTTP(S)_PROXY is set" if posts is None
            else f"{posts[0]:.0f} us, {posts[1]:.2f}%")
    print(f"\n| a sender's least work | {args.posts:g} POSTs/s |\n| --- | ---: |\n"
          f"| POST ten embeds, read the answer | {cell} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
