"""What ``logwatch run`` costs while it follows a live server: CPU, memory, latency.

    python bench/follow_cost.py [--quick] [--seconds 25] [--rates 1000,10000,50000]
                                [--files 1,200] [--skip-idle] [--skip-burst]
                                [--batch-wait 50ms]

For each rate and number of files, a writer *process* appends the benchmark's lines
(bench/generate.py: auth.log/syslog noise, about 4% events) to the followed files at
that steady rate, a few lines per write every ``--tick`` seconds, spread round-robin
over the files, while a real ``logwatch run`` subprocess follows them with the
benchmark's 50 rules (bench/run.py's ``rule_tables``), storms off, delivering to a
fake Discord on 127.0.0.1 (tests/fakeapi.py). Measured over the window (after a
warm-up), on the daemon's process only:

- CPU % of one core: utime + stime from ``/proc/PID/stat`` (all its threads), divided
  by the wall time of the window; us per line: the same CPU time per line written;
- RSS: ``VmHWM`` (peak) and ``VmRSS`` (now) from ``/proc/PID/status`` at the end;
- append-to-delivery latency of *marked* lines written during the window, twice a
  second among the others: each carries a unique token, a rule of their own sends them
  to a second webhook (so the benchmark rules' backlog, paced at Discord's 5 requests / 2 s,
  does not queue them), and each is timed from its write to the request's arrival
  at the fake (``CLOCK_MONOTONIC`` is shared by the processes).

Then idle CPU with 1,000 followed files (nothing written), and RSS under a burst of
200,000 alerts (marked lines written at once; the daemon's peak RSS until it has
committed them all).

The machine this runs on is shared and noisy: CPU *time* of the daemon is what is
measured, not wall time, but a busy neighbour still slows caches and wake-ups.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

import tomli_w

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from generate import generate  # noqa: E402
from run import DATA, rule_tables  # noqa: E402

from logwatch.state import DB_NAME  # noqa: E402
from tests.fakeapi import FakeAPI  # noqa: E402
from tests.helpers import Daemon, wait_for  # noqa: E402

#: the second webhook, for the marked lines only
MARKS_HOOK = ("445566", "marks-token-not-secret")
MARK = "LWMARK"
MARK_RULE = {"id": "bench-mark", "match": rf"markd\[\d+\]: {MARK} (?P<token>[0-9a-f]{{16}})",
             "title": "mark {token}", "to": ["marks"]}
_TOKEN = re.compile(rf"{MARK} ([0-9a-f]{{16}})|mark ([0-9a-f]{{16}})")
#: marked lines per second while a rate runs (Discord takes 5 requests / 2 s per webhook)
MARKS_PER_S = 2.0
POOL_LINES = 200_000
#: the daemons' compiled Hyperscan databases: the benchmark's own, filled before the first
#: measurement (what is measured is following, not the first start's compile; see warm())
HS_CACHE = DATA / "follow-cost-hyperscan"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------
# the daemon's figures, from /proc


def _stat_seconds(stat_path: str) -> float:
    """utime + stime from a ``/proc`` stat file, in seconds (fields 14 and 15 of proc(5))."""
    stat = Path(stat_path).read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (all its threads), in seconds."""
    return _stat_seconds(f"/proc/{pid}/stat")


def main_thread_seconds(pid: int) -> float:
    """utime + stime of the daemon's main thread (reading, matching, the policy, commits)."""
    return _stat_seconds(f"/proc/{pid}/task/{pid}/stat")


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of process ``pid``, KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def committed(state_dir: Path) -> int:
    """Bytes the daemon has committed, over every followed file."""
    try:
        with sqlite3.connect(f"file:{state_dir / DB_NAME}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT value FROM kv WHERE ns = 'checkpoint'").fetchall()
    except sqlite3.OperationalError:
        return 0
    return sum(f.get("offset", 0) for (value,) in rows for f in json.loads(value).get("files", []))


# ---------------------------------------------------------------------------
# the writer process


def mark_line(token: str) -> bytes:
    """A marked line: only the mark rule alerts on it."""
    return f"Nov 28 03:00:00 bench markd[1]: {MARK} {token}\n".encode()


def writer(paths: Sequence[str], rate: float, tick: float, pool_path: str,
           written: Synchronized[int], stop: Synchronized[int], marks_out: str) -> None:
    """Append ``rate`` lines/s round-robin over ``paths`` until ``stop``; marks to a file."""
    pool = Path(pool_path).read_bytes().splitlines(keepends=True)
    fds = [os.open(p, os.O_WRONLY | os.O_APPEND) for p in paths]
    marks: dict[str, float] = {}
    started = time.monotonic()
    done = n_marks = turn = 0
    while not stop.value:
        now = time.monotonic()
        due = int((now - started) * rate) - done
        per_file: dict[int, list[bytes]] = {}
        for i in range(due):
            per_file.setdefault(turn % len(fds), []).append(pool[(done + i) % len(pool)])
            turn += 1
        if (now - started) * MARKS_PER_S >= n_marks + 1:
            token = os.urandom(8).hex()
            per_file.setdefault(n_marks % len(fds), []).append(mark_line(token))
            n_marks += 1
            marks[token] = time.monotonic()
        for index, lines in per_file.items():
            os.write(fds[index], b"".join(lines))
        done += due
        written.value = done
        time.sleep(max(0.0, tick - (time.monotonic() - now)))
    for fd in fds:
        os.close(fd)
    Path(marks_out).write_text(json.dumps(marks))


# ---------------------------------------------------------------------------
# one daemon


#: ``[logwatch] batch_wait`` for the daemons (None: the default)
BATCH_WAIT: str | None = None


def write_config(tmp: Path, patterns: list[str], tables: list[dict[str, object]]) -> Path:
    """A config following ``patterns`` with the benchmark's rules plus the mark rule."""
    rules = [{**t, "to": ["bulk"]} for t in tables] + [MARK_RULE]
    settings: dict[str, object] = {"state_dir": str(tmp / "state"), "hostname": "bench",
                                   "storm": {"rate": 10_000_000}}
    if BATCH_WAIT is not None:
        settings["batch_wait"] = BATCH_WAIT
    doc = {
        "logwatch": settings,
        "destinations": {"bulk": {"type": "discord", "url": "${BENCH_BULK}"},
                         "marks": {"type": "discord", "url": "${BENCH_MARKS}"}},
        "sources": {"bench": {"files": patterns}},
        "rules": rules,
    }
    path = tmp / "bench.toml"
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    return path


def make_files(directory: Path, count: int) -> list[Path]:
    """``count`` empty log files in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"app{i:04d}.log" for i in range(count)]
    for path in paths:
        path.touch()
    return paths


class Running:
    """A fake Discord with two webhooks and a ``logwatch run`` following ``files``."""

    def __init__(self, tmp: Path, files: list[Path], tables: list[dict[str, object]]) -> None:
        self.tmp = tmp
        self.files = files
        pattern = [str(files[0].parent / "*.log")] if len(files) > 1 else [str(files[0])]
        self.config = write_config(tmp, pattern, tables)
        self.fake = FakeAPI()
        self.fake.webhooks.add(MARKS_HOOK)
        env = {"BENCH_BULK": self.fake.discord_url(),
               "BENCH_MARKS": self.fake.discord_url(*MARKS_HOOK),
               "CACHE_DIRECTORY": str(HS_CACHE)}
        self.daemon = Daemon(self.config, env=env)
        self.daemon.wait_stderr("sends to marks", timeout=60)
        self.pid = self.daemon.proc.pid

    def arrivals(self) -> dict[str, float]:
        """Token -> when the request carrying it reached the fake."""
        with self.fake.lock:
            received = [r for r in self.fake.received if r.target == MARKS_HOOK[0]]
        out: dict[str, float] = {}
        for request in received:
            for m in _TOKEN.finditer(json.dumps(request.body)):
                out.setdefault(m.group(1) or m.group(2), request.at)
        return out

    def written(self) -> int:
        """Bytes in the followed files now."""
        return sum(p.stat().st_size for p in self.files)

    def wait_caught_up(self, timeout: float) -> float:
        """Seconds until the daemon has committed every byte written (inf: not in time)."""
        started, size = time.monotonic(), self.written()
        try:
            wait_for(lambda: committed(self.tmp / "state") >= size, timeout, interval=0.05)
        except AssertionError:
            return float("inf")
        return time.monotonic() - started

    def close(self) -> None:
        """Stop the daemon and the fake."""
        self.daemon.stop()
        self.daemon.close()
        self.fake.close()


# ---------------------------------------------------------------------------
# the measurements


@dataclass
class Row:
    """One line of the table."""

    what: str
    cpu: float | None  # % of one core
    us_per_line: float | None
    hwm_mib: float
    rss_mib: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    note: str = ""


def percentile(sorted_ms: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of sorted values."""
    return sorted_ms[min(len(sorted_ms) - 1, max(0, round(q * len(sorted_ms)) - 1))]


def profiler(pid: int, seconds: float, out: Path | None) -> subprocess.Popen[bytes] | None:
    """``py-spy record`` of the daemon's threads over the window (collapsed stacks to ``out``)."""
    if out is None:
        return None
    exe = shutil.which("py-spy")
    if exe is None:
        raise SystemExit("--profile needs py-spy (pip install py-spy)")
    return subprocess.Popen([exe, "record", "-p", str(pid), "-d", str(round(seconds)), "-r", "250",
                             "-f", "raw", "--threads", "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def follow(tmp: Path, rate: int, n_files: int, seconds: float, warmup: float, tick: float,
           tables: list[dict[str, object]], pool: Path, profile: Path | None = None) -> Row:
    """One rate over ``n_files`` files (``profile``: py-spy's stacks of the window there)."""
    run = Running(tmp, make_files(tmp / "logs", n_files), tables)
    ctx = mp.get_context("spawn")
    written, stop = ctx.Value("q", 0), ctx.Value("b", 0)
    marks_out = tmp / "marks.json"
    proc = ctx.Process(target=writer, args=([str(p) for p in run.files], rate, tick, str(pool),
                                            written, stop, str(marks_out)))
    try:
        proc.start()
        wait_for(lambda: written.value > 0, 30)
        time.sleep(warmup)
        spy = profiler(run.pid, seconds, profile)
        cpu0, t0, lines0 = cpu_seconds(run.pid), time.monotonic(), written.value
        main0 = main_thread_seconds(run.pid)
        time.sleep(seconds)
        cpu1, t1, lines1 = cpu_seconds(run.pid), time.monotonic(), written.value
        main1 = main_thread_seconds(run.pid)
        mem = memory_kib(run.pid)
        if spy is not None:
            spy.wait(30)
        stop.value = 1
        proc.join(30)
        lag = run.wait_caught_up(60)
        marks: dict[str, float] = json.loads(marks_out.read_text())
        with contextlib.suppress(AssertionError):  # the ones missing are counted below
            wait_for(lambda: len(run.arrivals()) >= len(marks), 30, interval=0.05)
        arrivals = run.arrivals()
    finally:
        stop.value = 1
        proc.join(5)
        run.close()
    lines = lines1 - lines0
    load = os.getloadavg()[0]
    # every mark is checked for delivery; the latency is the window's (the warm-up's first
    # batches compile the rules' lazy parts and would measure the start, not following)
    missing = sum(t not in arrivals for t in marks)
    latencies = sorted((arrivals[t] - w) * 1000 for t, w in marks.items()
                       if t in arrivals and t0 <= w <= t1)
    main_share = 100 * (main1 - main0) / max(cpu1 - cpu0, 1e-9)
    note = (f"{lines / (t1 - t0):,.0f} lines/s written, {len(latencies)} marks in the window; "
            f"main thread {main_share:.0f}% of the CPU (senders the rest); caught up "
            f"{lag:.2f} s after the writer; load {load:.1f}")
    if missing:
        note += f"; {missing} of {len(marks)} marks NOT DELIVERED"
    return Row(f"{rate:,} lines/s, {n_files} file{'s' if n_files > 1 else ''}",
               100 * (cpu1 - cpu0) / (t1 - t0), 1e6 * (cpu1 - cpu0) / max(lines, 1),
               mem["VmHWM"] / 1024, mem["VmRSS"] / 1024,
               percentile(latencies, 0.5) if latencies else None,
               percentile(latencies, 0.99) if latencies else None, note)


def idle(tmp: Path, n_files: int, seconds: float, tables: list[dict[str, object]]) -> Row:
    """CPU while following ``n_files`` files that nobody writes to."""
    run = Running(tmp, make_files(tmp / "logs", n_files), tables)
    try:
        time.sleep(2.0)  # start-up work done
        cpu0, t0 = cpu_seconds(run.pid), time.monotonic()
        time.sleep(seconds)
        cpu1, t1 = cpu_seconds(run.pid), time.monotonic()
        mem = memory_kib(run.pid)
    finally:
        run.close()
    return Row(f"idle, {n_files:,} files", 100 * (cpu1 - cpu0) / (t1 - t0), None,
               mem["VmHWM"] / 1024, mem["VmRSS"] / 1024, note=f"{t1 - t0:.0f} s window")


def burst(tmp: Path, alerts: int, tables: list[dict[str, object]]) -> Row:
    """Peak RSS while ``alerts`` marked lines, written at once, are matched and committed."""
    run = Running(tmp, make_files(tmp / "logs", 1), tables)
    try:
        before = memory_kib(run.pid)
        cpu0 = cpu_seconds(run.pid)
        data = b"".join(mark_line(os.urandom(8).hex()) for _ in range(alerts))
        with run.files[0].open("ab") as out:
            out.write(data)
        seconds = run.wait_caught_up(600)
        cpu1 = cpu_seconds(run.pid)
        mem = memory_kib(run.pid)
    finally:
        run.close()
    return Row(f"burst of {alerts:,} alerts", None, 1e6 * (cpu1 - cpu0) / alerts,
               mem["VmHWM"] / 1024, mem["VmRSS"] / 1024,
               note=f"RSS {before['VmRSS'] / 1024:.0f} MiB before; committed in {seconds:.1f} s")


def warm(tables: list[dict[str, object]]) -> None:
    """Start a daemon once, so that every measured one loads its compiled databases.

    Only the first start after a change of rules compiles them (seconds of CPU, and a
    peak of memory that stays in ``VmHWM``); the service's later starts read them.
    """
    with tempfile.TemporaryDirectory(prefix="follow-cost-") as tmp:
        run = Running(Path(tmp), make_files(Path(tmp) / "logs", 1), tables)
        run.close()


def table(rows: list[Row]) -> str:
    """The markdown table."""
    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)
    out = ["| what | CPU of one core | us / line | peak RSS | RSS at end "
           "| latency p50 | latency p99 | notes |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        out.append(f"| {r.what} | {num(r.cpu, '.2f')}% | {num(r.us_per_line, '.1f')} "
                   f"| {r.hwm_mib:.0f} MiB | {r.rss_mib:.0f} MiB | {num(r.p50_ms, '.0f')} ms "
                   f"| {num(r.p99_ms, '.0f')} ms | {r.note} |")
    return "\n".join(out).replace("| - ms", "| -").replace("| -% ", "| - ")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the measurements and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 s windows, a 10,000-alert burst")
    ap.add_argument("--seconds", type=float, default=25.0, help="measured window per rate")
    ap.add_argument("--warmup", type=float, default=3.0, help="writing before the window")
    ap.add_argument("--rates", default="1000,10000,50000", help="lines/s, comma-separated")
    ap.add_argument("--files", default="1,200", help="followed files, comma-separated")
    ap.add_argument("--tick", type=float, default=0.005, help="seconds between writes")
    ap.add_argument("--idle-files", type=int, default=1000)
    ap.add_argument("--burst", type=int, default=200_000, help="alerts in the burst")
    ap.add_argument("--skip-idle", action="store_true")
    ap.add_argument("--skip-burst", action="store_true")
    ap.add_argument("--batch-wait", metavar="DURATION",
                    help="the daemon's batch_wait (default: logwatch's default)")
    ap.add_argument("--profile", type=Path, metavar="DIR",
                    help="py-spy record the daemon during each rate's window into DIR")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup, args.burst = 8.0, 2.0, 10_000
    global BATCH_WAIT  # noqa: PLW0603  (one setting for every daemon of the run)
    BATCH_WAIT = args.batch_wait

    pool = DATA / f"cost-pool-{POOL_LINES}.log"
    if not pool.exists():
        generate(pool, POOL_LINES)
    tables, origin = rule_tables(BENCH / "extra_rules.toml")
    print(f"{len(tables)} rules ({origin}) + the mark rule; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f}; {args.seconds:g} s windows", flush=True)
    warm(tables)
    rows: list[Row] = []
    for n_files in (int(x) for x in args.files.split(",")):
        for rate in (int(x) for x in args.rates.split(",")):
            spy = args.profile / f"follow-{rate}-{n_files}.txt" if args.profile else None
            with tempfile.TemporaryDirectory(prefix="follow-cost-") as tmp:
                rows.append(follow(Path(tmp), rate, n_files, args.seconds, args.warmup,
                                   args.tick, tables, pool, spy))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    if not args.skip_idle:
        with tempfile.TemporaryDirectory(prefix="follow-cost-") as tmp:
            rows.append(idle(Path(tmp), args.idle_files, max(args.seconds, 10.0), tables))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    if not args.skip_burst:
        with tempfile.TemporaryDirectory(prefix="follow-cost-") as tmp:
            rows.append(burst(Path(tmp), args.burst, tables))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
