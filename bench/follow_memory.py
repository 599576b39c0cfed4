"""RSS while following 100,000 lines appended across 20 files (flat memory check).

    python bench/follow_memory.py [--lines 100000] [--files 20]

Appends the lines in rounds (every file gets a few lines per round), reading as the
service would after each round, and prints VmRSS at the start, along the way and at
the end, plus the high-water mark.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from logwatch.config import Settings
from logwatch.sources.files import FileSource


def rss_kib(field: str = "VmRSS") -> int:
    """A memory figure of this process, from /proc/self/status."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / f"app{i:02d}.log" for i in range(args.files)]
        for path in paths:
            path.write_bytes(b"")
        woken = threading.Event()
        source = FileSource("bench", [f"{tmp}/*.log"],
                            Settings(state_dir=Path(tmp), hostname="bench"), woken.set)
        source.open(None)
        fds = [os.open(p, os.O_WRONLY | os.O_APPEND) for p in paths]
        seen = written = 0
        per_round = 25
        start = rss_kib()
        print(f"files={args.files} lines={args.lines}")
        print(f"RSS after open: {start} KiB")
        marks = {args.lines // 10, args.lines // 2}
        while written < args.lines:
            for fd in fds:
                for _ in range(per_round):
                    os.write(fd, b"Feb 25 14:34:10 host sshd[31602]: Failed password for root "
                                 b"from 192.0.2.%d port %d ssh2\n" % (written % 256, written))
                    written += 1
            for chunk in source.read():
                seen += chunk.data.count(b"\n")
            if any(written - len(fds) * per_round < m <= written for m in marks):
                print(f"RSS after {written:,} lines: {rss_kib()} KiB")
        while seen < written:
            got = sum(c.data.count(b"\n") for c in source.read())
            if not got:
                woken.wait(0.05)
                woken.clear()
            seen += got
        end = rss_kib()
        print(f"RSS after {written:,} lines (all {seen:,} read): {end} KiB "
              f"(delta {end - start:+} KiB); high-water {rss_kib('VmHWM')} KiB")
        for fd in fds:
            os.close(fd)
        source.close()


if __name__ == "__main__":
    main()
