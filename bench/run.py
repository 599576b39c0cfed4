"""The matching benchmark: ``python bench/run.py [--lines N] [--big]``.

Generates a deterministic auth.log/syslog mix (bench/generate.py) under
bench/data/, takes the rules of the shipped packs that are on by default
(``packs = ["default"]``) plus bench/extra_rules.toml up to 50, and measures, on
the same file and in the same run:

- ``logwatch test`` (the real code path: :func:`logwatch.commands.replay.replay`, timed in a
  fresh process once the rules are loaded), on every CPU, on one, and with the
  pure-Python scanner; and the whole command, interpreter start included;
- the naive loop (``for line: for rule: rule.pattern.search(line)``) on a slice,
  checking that it finds exactly the same hits;
- ``logwatch test`` with every pack enabled (all their rules, opt-in packs too),
  its hits on the slice checked against the naive loop's as well;
- ``rg -c -f`` and ``grep -c -P -f`` with the same 50 patterns, where installed;
- ``fail2ban-regex`` with one equivalent failregex on a slice, where installed;
- with ``--big``: peak RSS of ``python -m logwatch test`` on a 1 GB file.

Figures are lines/s and MB/s, best of ``--repeat`` runs, and ratios to logwatch:
this machine is noisy, ratios travel better than absolute numbers.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path

import tomli_w

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

from generate import generate  # noqa: E402

from logwatch import packs  # noqa: E402
from logwatch.commands.parallel import default_jobs  # noqa: E402
from logwatch.commands.replay import read_chunks  # noqa: E402
from logwatch.config import Config, load_config  # noqa: E402
from logwatch.matching import hyperscan_cache  # noqa: E402
from logwatch.matching.matcher import Matcher  # noqa: E402
from tests.reference import naive  # noqa: E402

DATA = BENCH / "data"
RULES = 50
FAILREGEX = r"sshd\[\d+\]: Failed password for (?:invalid user )?\S* from <HOST> port \d+"

Row = tuple[str, float, float, str]


def rule_tables(extra: Path | None, count: int = RULES,
                all_packs: bool = False) -> tuple[list[dict[str, object]], str]:
    """The default packs' rules (``all_packs``: every pack's), then the extra ones, ``count``
    in all, and where they came from."""
    tables: list[dict[str, object]] = []
    origin = []
    texts = [(f"logwatch/packs/{name}.toml", packs.read_text(name))
             for name in packs.names() if all_packs or packs.load(name).default]
    if extra is not None and extra.exists():
        texts.append((str(extra.relative_to(REPO)), extra.read_text(encoding="utf-8")))
    for where, text in texts:
        rules = tomllib.loads(text).get("rules", [])
        taken = rules[: count - len(tables)]
        tables.extend(taken)
        if taken:
            origin.append(f"{len(taken)} from {where}")
    for table in tables:
        # the benchmark has one source and the console: routing keys don't apply
        for key in ("source", "to", "tests", "enabled"):
            table.pop(key, None)
    return tables, ", ".join(origin)


def bench_config(log: Path, tables: list[dict[str, object]], name: str = "bench.toml") -> Path:
    """A config with just these rules reading ``log``."""
    doc = {"logwatch": {"state_dir": str(DATA / "state")},
           "sources": {"bench": {"files": [str(log)]}}, "rules": tables}
    path = DATA / name
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    return path


def timed(fn: Callable[[], object], repeat: int) -> tuple[list[float], object]:
    """The times of ``repeat`` runs of ``fn``, in order, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return times, result


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """The shortest of ``repeat`` runs of ``fn`` and the last result."""
    times, result = timed(fn, repeat)
    return min(times), result


#: one timed ``logwatch test`` in a fresh process: the rules are loaded first (not timed), then
#: replay() builds the matcher (translations, Hyperscan databases) and scans the file (timed)
_REPLAY_SNIPPET = """
import io, sys, time
from pathlib import Path
from logwatch.config import load_config
from logwatch.commands.replay import replay
config = load_config(sys.argv[1])
started = time.perf_counter()
result = replay(config, [Path(sys.argv[2])], io.StringIO(), jobs=int(sys.argv[3]))
print(time.perf_counter() - started, sum(result.hits.values()))
"""


def run_logwatch(config_path: Path, log: Path, repeat: int, scanner: str | None,
                 jobs: int) -> tuple[float, float, int]:
    """Best and first seconds of replay() over the file, each run in a new process (nothing
    learnt by an earlier run but the compiled filters on disk, emptied first so that the first
    run compiles them), and the hit count."""
    env = dict(os.environ)
    if scanner:
        env["LOGWATCH_SCANNER"] = scanner
    shutil.rmtree(hyperscan_cache.cache_dir(), ignore_errors=True)
    times, hits = [], 0
    for _ in range(repeat):
        proc = subprocess.run([sys.executable, "-c", _REPLAY_SNIPPET, str(config_path), str(log),
                               str(jobs)], cwd=REPO, env=env, capture_output=True, text=True,
                              check=True)
        seconds, count = proc.stdout.split()
        times.append(float(seconds))
        hits = int(count)
    return min(times), times[0], hits


def whole_command(config_path: Path, log: Path, repeat: int) -> float:
    """Best wall time of ``python -m logwatch test``: interpreter start, imports, rules, output.

    With bytecode caching on, as in any installation (this machine turns it off).
    """
    argv = [sys.executable, "-m", "logwatch", "test", "-c", str(config_path), str(log)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    seconds, _ = best(lambda: subprocess.run(argv, cwd=REPO, env=env, capture_output=True,
                                             check=True), repeat + 1)
    return seconds


def logwatch_rows(config: Config, config_path: Path, log: Path, repeat: int, jobs: int,
                  origin: str) -> list[Row]:
    """``logwatch test`` on ``log``: with ``jobs`` processes, one, and the pure-Python path."""
    data_lines, size = sum(1 for _ in log.open("rb")), log.stat().st_size
    matcher = Matcher(config.rules)
    engine = "hyperscan" if matcher.line_filter else "pure Python"
    covered = len(matcher.line_filter.covered) if matcher.line_filter else 0
    print(f"{data_lines:,} lines, {size / 1e6:.1f} MB; {len(config.rules)} rules ({origin}); "
          f"{default_jobs()} CPUs; line filter: {engine}, covers {covered} of "
          f"{matcher.patterns} patterns; "
          f"rules without a literal: {len(matcher.notes())}")
    runs = [(jobs, None), (1, None)] if jobs > 1 else [(1, None)]
    if matcher.line_filter:
        runs.append((1, "python"))
    rows: list[Row] = []
    for n, scanner in runs:
        seconds, first, hits = run_logwatch(config_path, log, repeat, scanner, n)
        what = "pure Python" if scanner else engine
        procs = f"{n} processes" if n > 1 else "1 process"
        rows.append((f"logwatch test ({what}, {procs})", data_lines / seconds,
                     size / seconds / 1e6, f"{hits:,} hits; first run {first:.2f} s"))
    seconds = whole_command(config_path, log, repeat)
    rows.append((f"the whole `logwatch test` command ({engine})", data_lines / seconds,
                 size / seconds / 1e6, "with interpreter start, imports, loading the rules"))
    return rows


def all_packs_rows(log: Path, piece: bytes, repeat: int, jobs: int) -> list[Row]:
    """``logwatch test`` with every pack's rules (the opt-in ones too), checked against the
    naive loop on the slice ``piece``."""
    tables, _ = rule_tables(None, count=10_000, all_packs=True)
    config_path = bench_config(log, tables, "bench-all-packs.toml")
    config = load_config(config_path)
    same = naive(config.rules, config.settings.ignore, piece) == hits_fast(config, piece)
    data_lines, size = sum(1 for _ in log.open("rb")), log.stat().st_size
    rows: list[Row] = []
    for n in ([jobs, 1] if jobs > 1 else [1]):
        seconds, first, hits = run_logwatch(config_path, log, repeat, None, n)
        procs = f"{n} processes" if n > 1 else "1 process"
        rows.append((f"logwatch test, all {len(config.rules)} pack rules ({procs})",
                     data_lines / seconds, size / seconds / 1e6,
                     f"{hits:,} hits; first run {first:.2f} s; slice: "
                     f"{'identical hits' if same else 'HITS DIFFER'} to the naive loop"))
    return rows


def hits_fast(config: Config, data: bytes) -> list[tuple[int, str, str, dict[str, str]]]:
    """(line start, rule, kind, fields) for every hit of the chunk path."""
    matcher = Matcher(config.rules, ignore=config.settings.ignore)
    out = []
    offset = 0
    for chunk in read_chunks(io.BytesIO(data)):
        out.extend((offset + m.start, m.rule.id, m.kind, m.fields) for m in matcher.scan(chunk))
        offset += len(chunk)
    return out


def flat(pattern: str) -> str:
    """A rule pattern on one line, without named groups, for rg and grep -P.

    Verbose ``(?x)`` patterns lose their comments and line breaks (whitespace is
    ignored there anyway); named groups become plain groups, since the regex
    module lets alternatives reuse a name and PCRE2 and Rust do not.
    """
    if pattern.startswith("(?x)"):
        lines = (re.sub(r"(?<!\\)#.*", "", line).strip() for line in pattern.splitlines())
        pattern = "".join(lines)
        pattern = pattern.replace("[ ]", "\\x20")  # Rust ignores a space in a class under (?x)
    return "(?:" + re.sub(r"(?<!\\)\(\?P?<(\w+)>", "(", pattern) + ")"


def no_lookaround(pattern: str) -> str:
    """``pattern`` without lookarounds (rg's default engine has none): it matches more lines."""
    while True:
        shorter = re.sub(r"\(\?<?[!=][^()]*\)", "", pattern)
        if shorter == pattern:
            return pattern
        pattern = shorter


def tool_patterns(config: Config) -> tuple[Path, Path, Path]:
    """The rules' patterns one a line (PCRE2, and Rust without lookarounds), and joined."""
    flats = [flat(r.pattern.pattern) for r in config.rules]
    lines, rust, joined = (DATA / n for n in ("patterns.txt", "rust.txt", "joined.txt"))
    lines.write_text("".join(p + "\n" for p in flats), encoding="utf-8")
    rust.write_text("".join(no_lookaround(p) + "\n" for p in flats), encoding="utf-8")
    joined.write_text("|".join(flats) + "\n", encoding="utf-8")
    return lines, rust, joined


def tools(log: Path, config: Config, lines: int, size: int, repeat: int) -> list[Row]:
    """rg and grep -P with the same patterns, where installed."""
    each, rust, joined = tool_patterns(config)
    rows: list[Row] = []
    for name, variants in (
        ("rg", (["rg", "-c", "-f", str(rust), str(log)],)),
        ("rg", (["rg", "-P", "-c", "-f", str(each), str(log)],)),
        ("grep", (["grep", "-c", "-P", "-f", str(joined), str(log)],)),
    ):
        if shutil.which(name) is None:
            print(f"  ({name} not installed: skipped)")
            continue
        for argv in variants:
            found = run_tool(argv, repeat)
            if found is not None:
                label = " ".join(argv[:-2]) + (" (no lookarounds)" if rust in argv else "")
                rows.append((label, lines / found[0], size / found[0] / 1e6,
                             f"{int(found[1] or 0):,} matching lines"))
                break
    return rows


def run_tool(argv: Sequence[str], repeat: int) -> tuple[float, str] | None:
    """Best time of a command and its output, or None if it fails."""
    def once() -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, capture_output=True, text=True, check=False)
    seconds, proc = best(once, repeat)
    if not isinstance(proc, subprocess.CompletedProcess):
        return None
    if proc.returncode not in (0, 1):
        print(f"  ({' '.join(argv[:2])} failed: {proc.stderr.strip().splitlines()[-1][:160]})")
        return None
    return seconds, proc.stdout.strip()


def fail2ban(slice_path: Path, lines: int) -> Row | None:
    """fail2ban-regex with one failregex over the slice."""
    exe = shutil.which("fail2ban-regex")
    if exe is None:
        return None
    found = run_tool([exe, str(slice_path), FAILREGEX], 1)
    if found is None:
        return None
    seconds, out = found
    matched = next((ln.strip() for ln in out.splitlines() if ln.startswith("Lines:")), "?")
    return ("fail2ban-regex, 1 failregex (slice)", lines / seconds,
            slice_path.stat().st_size / seconds / 1e6, matched)


#: run ``logwatch test`` and report the peak RSS of it or its largest worker (VmHWM: per address
#: space, so not inflated by the benchmark's memory that a fork would count)
_RSS_SNIPPET = """
import contextlib, os, resource, sys
from logwatch.cli import main
with open(os.devnull, "w") as out, contextlib.redirect_stdout(out):
    code = main(["test", "-c", sys.argv[1], sys.argv[2]])
hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:")]
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(max(int(hwm[0].split()[1]) if hwm else 0, workers))
"""


def peak_rss(config_path: Path, log: Path) -> tuple[float, int]:
    """Seconds and peak RSS (KiB) of ``logwatch test`` on ``log``."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _RSS_SNIPPET, str(config_path), str(log)],
                          cwd=REPO, capture_output=True, text=True, check=False)
    rss = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "0"
    return time.perf_counter() - started, int(rss)


def big_file(log: Path, size: int = 1 << 30) -> Path:
    """``log`` repeated up to ``size`` bytes."""
    big = DATA / "big.log"
    if not big.exists() or big.stat().st_size < size:
        data = log.read_bytes()
        with big.open("wb") as out:
            written = 0
            while written < size:
                out.write(data)
                written += len(data)
    return big


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000, help="lines in the file")
    ap.add_argument("--naive-lines", type=int, default=100_000,
                    help="lines for the naive loop and fail2ban-regex (they are slow)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool; the best counts")
    ap.add_argument("--big", action="store_true", help="also peak RSS on a 1 GB file")
    ap.add_argument("--jobs", type=int, default=default_jobs(),
                    help="worker processes for logwatch test (default: one per CPU)")
    args = ap.parse_args(argv)

    DATA.mkdir(exist_ok=True)
    log = DATA / f"bench-{args.lines}.log"
    if not log.exists():
        print(f"generating {log.relative_to(REPO)} ...")
        generate(log, args.lines)
    data = log.read_bytes()
    lines, size = data.count(b"\n"), len(data)
    tables, origin = rule_tables(BENCH / "extra_rules.toml")
    config_path = bench_config(log, tables)
    config = load_config(config_path)
    rows = logwatch_rows(config, config_path, log, args.repeat, args.jobs, origin)
    cut = len(b"\n".join(data.split(b"\n", args.naive_lines)[: args.naive_lines])) + 1
    piece = data[:cut]
    slice_path = DATA / f"slice-{args.naive_lines}.log"
    slice_path.write_bytes(piece)
    started = time.perf_counter()
    naive_hits = naive(config.rules, config.settings.ignore, piece)
    seconds = time.perf_counter() - started
    same = "identical hits" if naive_hits == hits_fast(config, piece) else "HITS DIFFER"
    rows.append((f"naive loop ({args.naive_lines:,}-line slice)", args.naive_lines / seconds,
                 cut / seconds / 1e6, f"{len(naive_hits):,} hits, {same}"))

    rows.extend(all_packs_rows(log, piece, args.repeat, args.jobs))
    rows.extend(tools(log, config, lines, size, args.repeat))
    if (row := fail2ban(slice_path, args.naive_lines)) is not None:
        rows.append(row)
    else:
        print("  (fail2ban-regex not installed: skipped)")

    ours = rows[0][1]
    print(f"\n| {'what':<40} | {'lines/s':>12} | {'MB/s':>8} | {'logwatch is':>11} | notes")
    print(f"| {'-' * 40} | {'-' * 12}:| {'-' * 8}:| {'-' * 11}:| -----")
    for name, lps, mbs, note in rows:
        print(f"| {name:<40} | {lps:>12,.0f} | {mbs:>8,.1f} | {ours / lps:>10.1f}x | {note}")

    if args.big:
        big = big_file(log)
        seconds, rss = peak_rss(config_path, big)
        _, small_rss = peak_rss(config_path, log)
        print(f"\npeak RSS of `logwatch test`: {small_rss / 1024:.0f} MiB on "
              f"{size / 1e6:.0f} MB, {rss / 1024:.0f} MiB on {big.stat().st_size / 1e9:.2f} GB "
              f"({big.stat().st_size / seconds / 1e6:.0f} MB/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
