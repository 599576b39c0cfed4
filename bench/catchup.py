"""Backlog catch-up: ``logwatch run`` on a 1,000,000-line backlog vs ``logwatch test``.

After a restart or an outage the daemon catches up through the same chunk path as
``logwatch test``. This runs both on the benchmark file (bench/generate.py) with
the same 50 rules: ``logwatch test`` in-process, then a real ``logwatch run``
subprocess with ``start_at = "beginning"`` and a fresh state, timed from start to
the moment its committed offset reaches the end of the file.

    python bench/catchup.py [--lines 1000000]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from generate import generate  # noqa: E402
from run import DATA, REPO, bench_config, rule_tables  # noqa: E402

from logwatch.config import load_config  # noqa: E402
from logwatch.replay import replay  # noqa: E402


def committed_offset(db: Path) -> int:
    """The offset the daemon has committed for the bench file (0 before any commit)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT value FROM kv WHERE ns = 'checkpoint'").fetchone()
    except sqlite3.OperationalError:
        return 0
    files = json.loads(row[0]).get("files", []) if row else []
    return max((f.get("offset", 0) for f in files), default=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    log = DATA / f"catchup-{args.lines}.log"
    if not log.exists():
        generate(log, args.lines)
    tables, origin = rule_tables(REPO / "rules.example.toml", BENCH / "extra_rules.toml")
    config_path = bench_config(log, tables)
    text = config_path.read_text().replace("[logwatch]", '[logwatch]\nstart_at = "beginning"', 1)
    config_path.write_text(text)
    config = load_config(config_path)
    size = log.stat().st_size

    started = time.perf_counter()
    replay(config, [log], io.StringIO())
    test_seconds = time.perf_counter() - started

    state = config.settings.state_dir
    shutil.rmtree(state, ignore_errors=True)
    started = time.perf_counter()
    with subprocess.Popen([sys.executable, "-m", "logwatch", "run", "-c", str(config_path)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        while committed_offset(state / "state.sqlite3") < size:
            if proc.poll() is not None:
                raise SystemExit(f"logwatch run exited with {proc.returncode}")
            time.sleep(0.05)
        run_seconds = time.perf_counter() - started
        proc.terminate()
    print(f"{args.lines:,} lines, {size / 1e6:.0f} MB, {len(tables)} rules ({origin})")
    print(f"logwatch test:            {args.lines / test_seconds:>12,.0f} lines/s  "
          f"({test_seconds:.1f} s)")
    print(f"logwatch run (catch-up):  {args.lines / run_seconds:>12,.0f} lines/s  "
          f"({run_seconds:.1f} s, including start-up)  = {test_seconds / run_seconds:.2f}x test")


if __name__ == "__main__":
    main()
