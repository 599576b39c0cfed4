"""End-to-end latency: a line appended to a followed file -> the alert at a fake Discord.

Runs a real ``logwatch run`` subprocess against the fake Discord of the test suite
(127.0.0.1 only), appends N matching lines one at a time (spaced so that Discord's
5 requests / 2 s pacing is never the bottleneck) and reports the median and p99 of
append -> request received.

    python bench/e2e_latency.py [--lines 200] [--no-inotify]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fakeapi import FakeAPI
from tests.helpers import Daemon, wait_for

CONFIG = """
[logwatch]
state_dir = "{state}"
poll_interval = "1s"
inotify = {inotify}
storm = {{ rate = 100000 }}

[destinations.oncall]
type = "discord"
url = "${{BENCH_DISCORD}}"

[sources.app]
files = ["{log}"]

[[rules]]
id = "latency"
match = 'ping (?P<n>\\d+)'
title = "ping {{n}}"
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--no-inotify", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeAPI() as fake:
        log = Path(tmp) / "app.log"
        log.touch()
        config = Path(tmp) / "c.toml"
        config.write_text(CONFIG.format(state=Path(tmp) / "state", log=log,
                                        inotify="false" if args.no_inotify else "true"))
        latencies = []
        with Daemon(config, env={"BENCH_DISCORD": fake.discord_url()}) as daemon:
            daemon.wait_stderr("sends to oncall")
            with log.open("a") as out:
                for n in range(args.lines):
                    sent = time.monotonic()
                    out.write(f"app[1]: ping {n}\n")
                    out.flush()
                    wait_for(lambda n=n: len(fake.received) > n, 30, interval=0.001)
                    latencies.append(fake.received[n].at - sent)
                    time.sleep(max(0.0, 0.41 - (time.monotonic() - sent)))  # stay under 5 / 2 s
            daemon.stop()
    ms = sorted(x * 1000 for x in latencies)
    p99 = ms[min(len(ms) - 1, round(0.99 * len(ms)) - 1)]
    mode = "periodic check only" if args.no_inotify else "inotify"
    print(f"{len(ms)} lines ({mode}): median {statistics.median(ms):.1f} ms, "
          f"p99 {p99:.1f} ms, max {ms[-1]:.1f} ms")


if __name__ == "__main__":
    main()
