"""Latency from a line's append to read() returning it (inotify on, or poll only).

    python bench/follow_latency.py [--samples 2000] [--no-inotify] [--poll 1.0]

A writer thread appends lines carrying their write time at irregular intervals;
the main loop waits for the source's inotify descriptor (or the poll interval) and
reads, as the service does (without its ``batch_wait``). Prints median, p99 and max.
"""

from __future__ import annotations

import argparse
import os
import random
import select
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from logwatch.config import Settings
from logwatch.sources.files import FileSource


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--no-inotify", action="store_true")
    parser.add_argument("--poll", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "app.log"
        path.write_bytes(b"")
        settings = Settings(state_dir=Path(tmp), hostname="bench", poll_interval=args.poll,
                            use_inotify=not args.no_inotify)
        source = FileSource("bench", [str(path)], settings, lambda: None)
        source.open(None)

        def write() -> None:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            rng = random.Random(1)
            for n in range(args.samples):
                line = b"%d %d sshd[1]: Failed password\n" % (time.perf_counter_ns(), n)
                os.write(fd, line)
                time.sleep(rng.uniform(0.0005, 0.005))
            os.close(fd)

        writer = threading.Thread(target=write)
        writer.start()
        latencies: list[float] = []
        while len(latencies) < args.samples:
            fd = source.fileno()
            select.select([] if fd is None else [fd], [], [], args.poll)
            for chunk in source.read():
                now = time.perf_counter_ns()
                for line in chunk.data.splitlines():
                    latencies.append((now - int(line.split()[0])) / 1e6)
        writer.join()
        source.close()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    mode = "poll only" if args.no_inotify else "inotify"
    print(f"{mode}: {len(latencies)} lines, median {statistics.median(latencies):.2f} ms, "
          f"p99 {p99:.2f} ms, max {latencies[-1]:.2f} ms")


if __name__ == "__main__":
    main()
