"""``logwatch test``: replay log files through the rules, as ``fail2ban-regex`` does.

Files are read in large binary chunks cut at a line boundary and handed to the
matcher whole, so memory stays flat on a file of any size and the matcher's
chunk path (prefilter, then rules only on candidate lines) does the work.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TextIO

from logwatch.config import Config
from logwatch.errors import LogwatchError
from logwatch.matcher import Matcher
from logwatch.rules import Rule

CHUNK_SIZE = 4 << 20
SAMPLES_PER_RULE = 3


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
) -> ReplayResult:
    """Run the rules over every line of ``paths``; print hits as JSON lines if ``as_json``."""
    matcher = Matcher(select_rules(config, rule), ignore=config.settings.ignore,
                      timeout=config.settings.match_timeout)
    result = ReplayResult()
    started = time.perf_counter()
    for path in paths:
        try:
            with path.open("rb") as stream:
                _replay_file(matcher, path, stream, out, result, as_json, progress)
        except BrokenPipeError:
            raise
        except IsADirectoryError:
            result.errors.append(f"{path}: is a directory, not a log file")
        except OSError as exc:
            result.errors.append(f"{path}: cannot read: {exc.strerror or exc}")
    result.seconds = time.perf_counter() - started
    result.ignored.update(matcher.ignored)
    result.timeouts.update(matcher.timeouts)
    return result


def _replay_file(
    matcher: Matcher,
    path: Path,
    stream: BinaryIO,
    out: TextIO,
    result: ReplayResult,
    as_json: bool,
    progress: TextIO | None,
) -> None:
    total = _size(stream)
    shown = time.monotonic()
    for data in read_chunks(stream):
        line_no = result.lines  # lines before this chunk, in this run
        counted_to = 0
        for m in matcher.scan(data):
            line_no += data.count(b"\n", counted_to, m.start)
            counted_to = m.start
            result.hits[m.rule.id] += 1
            samples = result.samples.setdefault(m.rule.id, [])
            if len(samples) < SAMPLES_PER_RULE:
                samples.append(m.text)
            if as_json:
                out.write(json.dumps({"rule": m.rule.id, "file": str(path), "line_no": line_no + 1,
                                      "fields": m.fields}, ensure_ascii=False) + "\n")
        result.lines += data.count(b"\n")
        result.bytes += len(data)
        if progress is not None and time.monotonic() - shown > 0.5:
            shown = time.monotonic()
            done = f" {100 * stream.tell() / total:.0f}%" if total else ""
            progress.write(f"\r{path}:{done} {result.lines:,} lines")
            progress.flush()
    if progress is not None:
        progress.write("\r\x1b[K")


def _size(stream: BinaryIO) -> int:
    try:
        return max(stream.seek(0, 2), 0)
    finally:
        stream.seek(0)


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
            out.write(f"{'':<{width}}    | {_clip(sample)}\n")


def _clip(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def is_terminal(stream: TextIO) -> bool:
    """Whether progress can be drawn on ``stream``."""
    return hasattr(stream, "isatty") and stream.isatty() and stream is sys.stderr
