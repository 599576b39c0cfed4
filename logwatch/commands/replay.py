"""``logwatch test``: replay log files through the rules, as ``fail2ban-regex`` does.

Files are read in large binary chunks cut at a line boundary and handed to the
matcher whole, so memory stays flat on a file of any size and the matcher's
chunk path (prefilter, then rules only on candidate lines) does the work.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TextIO

from logwatch.commands import parallel
from logwatch.commands.tally import SAMPLES_PER_RULE, Tally, tally
from logwatch.config import Config
from logwatch.errors import LogwatchError
from logwatch.matching import Matcher
from logwatch.matching.context import ContextMemory
from logwatch.rules import Rule
from logwatch.terminal import escape_controls

CHUNK_SIZE = 4 << 20


@dataclass
class ReplayResult:
    """What a replay found: counts per rule, sample lines, speed."""

    lines: int = 0
    bytes: int = 0
    seconds: float = 0.0
    hits: Counter[str] = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=dict)
    ignored: Counter[str] = field(default_factory=Counter)
    timeouts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    @property
    def lines_per_second(self) -> float:
        """Throughput of the whole replay."""
        return self.lines / self.seconds if self.seconds > 0 else 0.0


def read_chunks(stream: BinaryIO, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """``stream`` in pieces of about ``size`` bytes, each ending at a newline.

    The last piece gets a newline added if the file does not end with one.
    """
    rest = b""
    while block := stream.read(size):
        block = rest + block if rest else block
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            rest = block
            continue
        rest = block[cut:]
        yield block[:cut]
    if rest:
        yield rest + b"\n"


STDIN = "-"


def open_log(path: Path) -> BinaryIO:
    """``path`` opened for reading; ``-`` is standard input (``journalctl -o short | ...``)."""
    if str(path) == STDIN:
        return os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    return path.open("rb")


def missing_logs(paths: Sequence[Path]) -> list[str]:
    """One line per path that names no file here, said before any replay starts."""
    return [f"{path}: no such file" for path in paths
            if str(path) != STDIN and not path.exists()]


def select_rules(config: Config, rule_id: str | None) -> tuple[Rule, ...]:
    """All rules, or just ``rule_id`` (a ``LogwatchError`` if there is no such rule)."""
    if rule_id is None:
        return config.rules
    chosen = tuple(r for r in config.rules if r.id == rule_id)
    if not chosen:
        known = ", ".join(r.id for r in config.rules) or "none"
        raise LogwatchError(f'--rule: no rule "{rule_id}" in {config.path} (rules: {known})')
    return chosen


def replay(
    config: Config,
    paths: Sequence[Path],
    out: TextIO,
    *,
    rule: str | None = None,
    as_json: bool = False,
    progress: TextIO | None = None,
    jobs: int = 1,
) -> ReplayResult:
    """Run the rules over every line of ``paths``; print hits as JSON lines if ``as_json``.

    With ``jobs`` above 1, a large regular file is cut into segments of whole
    lines scanned by that many worker processes (:mod:`logwatch.commands.parallel`); the
    results and their order are the same (a worker first reads the lines a rule's
    ``context`` may look back on before its segment).
    """
    rules = select_rules(config, rule)
    matcher = Matcher(rules, ignore=config.settings.ignore,
                      timeout=config.settings.match_timeout)
    result = ReplayResult()
    started = time.perf_counter()
    for path in paths:
        report = _Report(path, out, result, progress)
        try:
            with open_log(path) as stream:
                report.total = os.fstat(stream.fileno()).st_size
                # each file is a source of its own: what its lines lend, in its order
                memory = ContextMemory.of(rules)
                if jobs > 1 and parallel.worth_it(stream):
                    parallel.replay_file(matcher, stream, jobs, as_json, report.add)
                else:
                    for data in read_chunks(stream):
                        report.add(tally(matcher, data, as_json, memory))
        except BrokenPipeError:
            raise
        except parallel.WorkerDied as exc:
            result.errors.append(f"{path}: {exc}")
        except IsADirectoryError:
            result.errors.append(f"{path}: is a directory, not a log file")
        except OSError as exc:
            result.errors.append(f"{path}: cannot read: {exc.strerror or exc}")
        report.done()
    result.seconds = time.perf_counter() - started
    result.ignored.update(matcher.ignored)
    result.timeouts.update(matcher.timeouts)
    return result


def _add_samples(samples: dict[str, list[str]], more: dict[str, list[str]]) -> None:
    for rule_id, texts in more.items():
        kept = samples.setdefault(rule_id, [])
        kept += texts[: SAMPLES_PER_RULE - len(kept)]


class _Report:
    """Adds the tallies of one file, in order, to the result: JSON lines, samples, progress."""

    def __init__(self, path: Path, out: TextIO, result: ReplayResult,
                 progress: TextIO | None) -> None:
        self.path, self.out, self.result, self.progress = path, out, result, progress
        self.shown = time.monotonic()
        #: the file's size (0: unknown) and how much of it is done
        self.total = self.read = 0
        #: lines of this file so far: ``line_no`` counts per file
        self.lines = 0

    def add(self, piece: Tally) -> None:
        result, file = self.result, str(self.path)
        for line_no, rule_id, fields in piece.records:
            self.out.write(json.dumps({"rule": rule_id, "file": file,
                                       "line_no": self.lines + line_no, "fields": fields},
                                      ensure_ascii=False) + "\n")
        self.lines += piece.lines
        result.lines += piece.lines
        result.bytes += piece.bytes
        self.read += piece.bytes
        result.hits.update(piece.hits)
        _add_samples(result.samples, piece.samples)
        result.ignored.update(piece.ignored)
        result.timeouts.update(piece.timeouts)
        if self.progress is not None and time.monotonic() - self.shown > 0.5:
            self.shown = time.monotonic()
            done = f" {100 * min(self.read / self.total, 1):.0f}%" if self.total else ""
            self.progress.write(f"\r{escape_controls(str(self.path))}:{done} "
                                f"{result.lines:,} lines")
            self.progress.flush()

    def done(self) -> None:
        if self.progress is not None:
            self.progress.write("\r\x1b[K")


def print_summary(result: ReplayResult, rules: Sequence[Rule], out: TextIO) -> None:
    """The human-readable report: hits per rule with samples, then speed."""
    out.write(f"Lines: {result.lines:,}, matched: {sum(result.hits.values()):,}, "
              f"{result.lines_per_second:,.0f} lines/s "
              f"({result.bytes / max(result.seconds, 1e-9) / 1e6:,.1f} MB/s)\n\n")
    width = max((len(r.id) for r in rules), default=4)
    for rule in rules:
        hits = result.hits[rule.id]
        extra = []
        if result.ignored[rule.id]:
            extra.append(f"{result.ignored[rule.id]} ignored")
        if result.timeouts[rule.id]:
            extra.append(f"{result.timeouts[rule.id]} stopped by the match timeout")
        note = f"  ({', '.join(extra)})" if extra else ""
        out.write(f"{rule.id:<{width}}  {hits:>8,} hits{note}\n")
        for sample in result.samples.get(rule.id, []):
            out.write(f"{'':<{width}}    | {_clip(escape_controls(sample))}\n")


def _clip(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def is_terminal(stream: TextIO) -> bool:
    """Whether progress can be drawn on ``stream``."""
    return hasattr(stream, "isatty") and stream.isatty() and stream is sys.stderr
