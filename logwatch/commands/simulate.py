"""``logwatch test --alerts``: what would have been sent, had logwatch followed these files.

Each line is replayed at its own time (see :mod:`logwatch.commands.timestamps`; a line
without one takes the previous line's) through the matcher and the
:class:`~logwatch.policy.policy.Policy`, with a fake clock that the timestamps move
forward. The policy's timers (dedup summaries, quiet resolves, storm digests)
fire between lines exactly when they fall due, and once more after the last
line, so every window ends. The result accounts for every hit, per destination::

    hits = in alerts + in summaries + in digests + below threshold
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Literal, TextIO

from logwatch.commands.replay import read_chunks, select_rules
from logwatch.commands.timestamps import parse_timestamp
from logwatch.config import Config
from logwatch.errors import LogwatchError
from logwatch.matching import Matcher
from logwatch.matching.context import ContextMemory, plain
from logwatch.models import Alert, Hit, LogLine
from logwatch.policy import Policy
from logwatch.terminal import escape_controls

#: how much of an alert's text one output line shows
WIDTH = 160


@dataclass
class Account:
    """What became of the hits of the rules that send to one destination."""

    hits: int = 0
    alerted: int = 0
    summarized: int = 0
    digested: int = 0
    below_threshold: int = 0

    @property
    def accounted(self) -> int:
        """Hits found in an alert, a summary, a digest, or held back by a threshold."""
        return self.alerted + self.summarized + self.digested + self.below_threshold

    @property
    def balanced(self) -> bool:
        """Whether every hit is accounted for."""
        return self.hits == self.accounted


@dataclass
class SimulationResult:
    """What a simulation saw and would have sent."""

    lines: int = 0
    hits: Counter[str] = field(default_factory=Counter)
    resolves: int = 0
    #: hits on lines with no timestamp of their own
    untimed: int = 0
    #: of those, hits before any line with a timestamp (no previous line's time to take)
    untimed_first: int = 0
    first: float | None = None
    last: float | None = None
    alerts: list[Alert] = field(default_factory=list)
    accounts: dict[str, Account] = field(default_factory=dict)

    def kinds(self) -> Counter[str]:
        """How many alerts of each kind (alert, summary, digest, resolved, system)."""
        return Counter(a.kind for a in self.alerts)

    @property
    def balanced(self) -> bool:
        """Whether every destination accounts for every hit."""
        return all(a.balanced for a in self.accounts.values())


class ReplayClock:
    """The simulation's time: where the replay has got to."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclass
class HostReplay:
    """One host's simulation in progress."""

    config: Config
    policy: Policy
    matcher: Matcher
    clock: ReplayClock
    out: TextIO
    wall: float
    result: SimulationResult = field(default_factory=SimulationResult)
    #: time of the last line read that had one, carried across chunks
    previous: float | None = None

    def advance(self, t: float) -> None:
        """Move the clock to ``t``, firing every timer due by then, in order."""
        self.clock.now = max(self.clock.now, t)
        while (due := self.policy.next_due()) is not None and due <= self.clock.now:
            self.emit(self.policy.tick(due))

    def emit(self, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            self.result.alerts.append(alert)
            self.out.write(format_alert(alert, many=len(self.config.destinations) > 1))

    def file(self, path: Path, stream: BinaryIO) -> None:
        for t, hit in self.hits(path, stream):
            self.advance(t)
            if hit is not None:
                self.emit(self.policy.feed(hit))

    def hits(self, path: Path, stream: BinaryIO) -> Iterator[tuple[float, Hit | None]]:
        """Each hit with its time, and ``(time, None)`` when a chunk's last line moves time."""
        offset = 0
        # a file is a source of its own: its lines are what a rule's context looks back on
        memory = ContextMemory.of(self.config.rules)
        for data in read_chunks(stream):
            matches = self.matcher.scan(data)
            for m, fields in plain(matches) if memory is None else memory.hits(matches, data):
                t = self.line_time(data, m.start, m.text)
                line = LogLine(m.text, "test", str(path), f"{path}@{offset + m.start}", t)
                kind: Literal["match", "resolve"] = "match"
                if m.kind == "resolve":
                    self.result.resolves += 1
                    kind = "resolve"
                else:
                    self.result.hits[m.rule.id] += 1
                yield t, Hit(m.rule.id, fields, line, kind)
            self.result.lines += data.count(b"\n")
            offset += len(data)
            if (end := _last_time(data, len(data), self.wall)) is not None:
                self.previous = end
                yield end, None

    def line_time(self, data: bytes, start: int, text: str) -> float:
        t = parse_timestamp(text, now=self.wall)
        if t is None:
            self.result.untimed += 1
            earlier = _last_time(data, start, self.wall) or self.previous
            if earlier is None:
                self.result.untimed_first += 1
            t = earlier or self.clock.now
        if self.result.first is None:
            self.result.first = t
        self.result.last = t if self.result.last is None else max(self.result.last, t)
        return t

    def finish(self) -> None:
        """Let every window end, then count what became of the hits per destination."""
        while (due := self.policy.next_due()) is not None:
            self.clock.now = max(self.clock.now, due)
            self.emit(self.policy.tick(due))
        self.account()

    def account(self) -> None:
        """Every window has ended: count what became of the hits per destination."""
        # no more alerts can come; this only moves hits still in threshold windows to "below"
        horizon = max((r.threshold.within for r in self.config.rules if r.threshold), default=0.0)
        self.emit(self.policy.tick(self.clock.now + horizon + 1))
        accounts = self.result.accounts
        for name in self.config.destinations:
            accounts[name] = Account()
        for rule in self.config.rules:
            for name in rule.to:
                accounts[name].hits += self.result.hits[rule.id]
                accounts[name].below_threshold += self.policy.counters.below[rule.id]
        for alert in self.result.alerts:
            for name in alert.to:
                account = accounts[name]
                if alert.kind == "alert":
                    account.alerted += alert.count
                elif alert.kind == "summary":
                    account.summarized += alert.count
                elif alert.kind == "digest":
                    account.digested += alert.count


def _last_time(data: bytes, end: int, wall: float) -> float | None:
    """The time of the last line before ``end`` in ``data`` that has one."""
    while end > 0:
        start = data.rfind(b"\n", 0, end - 1) + 1
        head = data[start:min(end, start + 64)].decode("utf-8", "replace")
        if (t := parse_timestamp(head, now=wall)) is not None:
            return t
        end = start
    return None


def simulate(
    config: Config,
    paths: Sequence[Path],
    out: TextIO,
    *,
    rule: str | None = None,
    now: float | None = None,
) -> SimulationResult:
    """Replay ``paths`` at their own times through rules and policy; print what is sent.

    ``now`` is the wall time that decides the year of year-less syslog dates
    (default: the current time). Raises ``LogwatchError`` for an unreadable file.
    """
    wall = time.time() if now is None else now
    config = replace(config, rules=select_rules(config, rule))
    clock = ReplayClock(wall)
    run = HostReplay(config, Policy(config, clock), Matcher(
        config.rules, ignore=config.settings.ignore, timeout=config.settings.match_timeout),
        clock, out, wall)
    started = False
    for path in paths:
        if str(path) == "-":
            raise LogwatchError("--alerts reads each file twice: save the log to a file "
                                "first (journalctl -o short > journal.log)")
        with open_log(path) as stream:
            if not started:  # the clock starts at the first line's time, not at `now`
                clock.now = first_time(stream, wall) or wall
                started = True
            run.file(Path(path), stream)
    run.finish()
    print_accounts(run.result, out)
    return run.result


@contextmanager
def open_log(path: Path) -> Iterator[BinaryIO]:
    """``path`` opened for reading; ``LogwatchError`` (one line) if it cannot be read."""
    try:
        with Path(path).open("rb") as stream:
            yield stream
    except BrokenPipeError:  # `| head`: the CLI's business, not an unreadable file
        raise
    except IsADirectoryError as exc:
        raise LogwatchError(f"{path}: is a directory, not a log file") from exc
    except OSError as exc:
        raise LogwatchError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def first_time(stream: BinaryIO, wall: float) -> float | None:
    """The time of the first of the first 100 lines of ``stream`` that has one."""
    head = stream.read(64 * 1024)
    stream.seek(0)
    for line in head.splitlines()[:100]:
        if (t := parse_timestamp(line[:64].decode("utf-8", "replace"), now=wall)) is not None:
            return t
    return None


def format_alert(alert: Alert, *, many: bool = False) -> str:
    """One alert as the simulation prints it: time, kind, title; the message below it."""
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime(alert.time))
    to = f"  -> {', '.join(alert.to)}" if many else ""
    head, *body = alert.message.splitlines() if alert.kind == "summary" else [alert.title]
    lines = [f"{stamp}  {alert.kind:<8}  {_clip(head)}{to}"]
    if alert.kind != "summary" and alert.message and alert.message != alert.title:
        body = alert.message.splitlines()
    lines += [f"{'':<17}{'':<10}  {_clip(text)}" for text in body]
    return "\n".join(lines) + "\n"


def print_accounts(result: SimulationResult, out: TextIO) -> None:
    """The closing lines: what was read, what was sent, and where every hit went."""
    kinds = result.kinds()
    span = ""
    if result.first is not None and result.last is not None:
        fmt = "%b %d %H:%M:%S"
        span = (f" from {time.strftime(fmt, time.localtime(result.first))}"
                f" to {time.strftime(fmt, time.localtime(result.last))}")
    hits = sum(result.hits.values())
    out.write(f"\n{result.lines:,} lines{span}: {hits:,} hits -> {kinds['alert']} alerts, "
              f"{kinds['summary']} summaries, {kinds['digest']} digests, "
              f"{kinds['resolved']} resolved, {kinds['system']} storm notices\n")
    for name, acc in sorted(result.accounts.items()):
        if not acc.hits:
            continue
        verdict = "all accounted for" if acc.balanced else f"{acc.hits - acc.accounted} UNACCOUNTED"
        out.write(f"{name}: {acc.hits:,} hits = {acc.alerted:,} in alerts + "
                  f"{acc.summarized:,} in summaries + {acc.digested:,} in digests + "
                  f"{acc.below_threshold:,} below threshold ({verdict})\n")
    if after := result.untimed - result.untimed_first:
        out.write(f"{after:,} hits had no timestamp of their own: the previous "
                  "line's time was used\n")
    if result.untimed_first:
        out.write(f"{result.untimed_first:,} hits had no timestamp and no line before them "
                  "had one: they were replayed at the file's first time (or now), so "
                  "thresholds and dedup may differ; logwatch reads syslog, ISO 8601, nginx "
                  "and Apache dates\n")


def _clip(text: str) -> str:
    text = escape_controls(text)  # titles and messages quote log lines
    return text if len(text) <= WIDTH else text[: WIDTH - 1] + "…"
