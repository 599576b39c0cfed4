"""Backlog catch-up: ``logwatch run`` on a 1,000,000-line backlog vs ``logwatch test``.

After a restart or an outage the daemon catches up through the same chunk path as
``logwatch test``. This runs both on the benchmark file (bench/generate.py) with
the same 50 rules: ``logwatch test`` in-process, then real ``logwatch run`` and
``logwatch run --dry-run`` subprocesses with ``start_at = "beginning"`` and a fresh
state, each timed from start to the moment its committed offset reaches the end of
the file. A dry run keeps its state in a temporary directory: the subprocess gets
its own ``TMPDIR`` so that the benchmark can find it.

    python bench/catchup.py [--lines 1000000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from generate import generate  # noqa: E402
from run import DATA, bench_config, rule_tables  # noqa: E402

from logwatch.commands.replay import replay  # noqa: E402
from logwatch.config import load_config  # noqa: E402
from logwatch.state import DB_NAME  # noqa: E402


def committed_offset(db: Path) -> int:
    """The offset the daemon has committed for the bench file (0 before any commit)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT value FROM kv WHERE ns = 'checkpoint'").fetchone()
    except sqlite3.OperationalError:
        return 0
    files = json.loads(row[0]).get("files", []) if row else []
    return max((f.get("offset", 0) for f in files), default=0)


def dry_run_db(tmp: Path) -> Path:
    """The state database of the dry run whose ``TMPDIR`` is ``tmp`` (once it exists)."""
    found = sorted(tmp.glob(f"logwatch-dry-run-*/{DB_NAME}"))
    return found[0] if found else tmp / "not-yet" / DB_NAME


def time_run(config_path: Path, size: int, *extra: str) -> float:
    """Seconds from starting ``logwatch run`` until it has committed the whole file."""
    with tempfile.TemporaryDirectory(prefix="catchup-") as tmp:
        env = {**os.environ, "TMPDIR": tmp}
        state = load_config(config_path).settings.state_dir
        shutil.rmtree(state, ignore_errors=True)
        db: Callable[[], Path] = ((lambda: dry_run_db(Path(tmp))) if "--dry-run" in extra
                                  else (lambda: state / DB_NAME))
        started = time.perf_counter()
        with subprocess.Popen([sys.executable, "-m", "logwatch", "run", "-c", str(config_path),
                               *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=env) as proc:
            while committed_offset(db()) < size:
                if proc.poll() is not None:
                    raise SystemExit(f"logwatch run {' '.join(extra)} exited with "
                                     f"{proc.returncode}")
                time.sleep(0.02)
            seconds = time.perf_counter() - started
            proc.terminate()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs of each")
    args = parser.parse_args()
    log = DATA / f"catchup-{args.lines}.log"
    if not log.exists():
        generate(log, args.lines)
    tables, origin = rule_tables(BENCH / "extra_rules.toml")
    config_path = bench_config(log, tables)
    text = config_path.read_text().replace("[logwatch]", '[logwatch]\nstart_at = "beginning"', 1)
    config_path.write_text(text)
    config = load_config(config_path)
    size = log.stat().st_size

    tests, runs, dry_runs = [], [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        replay(config, [log], io.StringIO())
        tests.append(time.perf_counter() - started)
        runs.append(time_run(config_path, size))
        dry_runs.append(time_run(config_path, size, "--dry-run"))
    test, run, dry = min(tests), min(runs), min(dry_runs)
    print(f"{args.lines:,} lines, {size / 1e6:.0f} MB, {len(tables)} rules ({origin})")
    print(f"logwatch test:                      {args.lines / test:>12,.0f} lines/s  "
          f"({test:.1f} s)")
    for name, seconds in (("logwatch run (catch-up):", run),
                          ("logwatch run --dry-run (catch-up):", dry)):
        print(f"{name:<35}{args.lines / seconds:>12,.0f} lines/s  ({seconds:.1f} s, "
              f"including start-up)  = {test / seconds:.2f}x test")


if __name__ == "__main__":
    main()
