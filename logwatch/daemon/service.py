"""The daemon: ``Service(config)`` with :meth:`startup`, :meth:`main_loop`, :meth:`shutdown`.

One main thread reads the sources, matches, applies the policy and commits; one
sender thread per destination delivers from the outbox. Signal handlers only set
flags; the main loop sleeps in ``select`` on a self-pipe that signals, inotify
events and journal output all write to, so it wakes at once for any of them.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import math
import os
import select
import signal
import sqlite3
import tempfile
import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Literal

from logwatch import metrics
from logwatch.config import Config, load_config
from logwatch.daemon.sd_notify import Notifier
from logwatch.delivery import outbox
from logwatch.delivery.sender import Sender, build_senders
from logwatch.errors import ConfigError, StateError
from logwatch.matching import Matcher, engine
from logwatch.matching.context import ContextMemory, newlines
from logwatch.models import Alert, Chunk, Hit, LogLine, alert_id
from logwatch.policy import Policy
from logwatch.sources import Source, build_sources
from logwatch.state import Checkpointer, State, get_value, open_state, put_text, put_value
from logwatch.state_lock import StateLock

if TYPE_CHECKING:  # loaded only with [fleet]
    from logwatch.fleet.link import FleetLink

log = logging.getLogger(__name__)

#: what one :meth:`Service._process` did: nothing new, all there was, or stopped at a limit
Progress = Literal["idle", "done", "more"]

#: how much one source may read before the others get their turn; also one transaction's
#: worth of lines during a catch-up, so each commit's fixed cost is spread over many lines
READ_BUDGET = 4 << 20
#: a transaction ends at the end of the read where its alerts reached this many (the rest
#: is read by the next one), so a burst of matching lines costs the memory of a few
#: thousand alerts, not of 70,000 (see :meth:`Service._process`)
ALERTS_PER_COMMIT = 2000
#: a transaction is committed once it has been open this long, so that a line waits at
#: most about ``batch_wait`` plus this before its alert can be sent, even while a busy
#: writer keeps the source from running dry (a backlog is then read in slices this long)
TRANSACTION_TIME = 0.025
#: a transaction's lines are read and matched a piece at a time: first a small one, then
#: sized by the alerts per byte of the last one, at most MAX_PIECE
FIRST_PIECE = 128 << 10
MAX_PIECE = 1 << 20
#: lines read, and what they decided, are committed at once when one of their alerts could
#: be sent now; otherwise (no alert, or alerts only for destinations whose pace is closed or
#: whose backlog goes first) with the next commit, at most this long after they were read
COMMIT_WITHIN = 1.0
#: ... or once this many alerts are staged, or policy rows changed: a commit's size, hence
#: how long it holds up the loop (and the next alert that could go at once), stays small
#: while a busy destination's alerts wait for their turn (at 50,000 lines/s, 950 alerts
#: and some 2,000 changed rows a second)
STAGED_MOST = 250
#: the weight of the last pump in :attr:`Service._pump_time`'s moving average
PUMP_TIME_WEIGHT = 0.25
#: the part of ``batch_wait`` gathered however long reading takes (see :meth:`Service._gather`)
GATHER_LEAST = 0.5
#: the timers (summaries, digests, silent sources...) are looked at at most this often
TICK_EVERY = 0.25
#: the ``logwatch status`` lines of the policy are rewritten at most this often while busy
STATUS_EVERY = 1.0
#: delivered rows are kept this long (for `status`), then pruned so the outbox stays small
OUTBOX_RETENTION = 7 * 86400.0
PRUNE_EVERY = 3600.0
#: how often the fleet link's state is written for ``logwatch status`` (and a down link probed)
FLEET_STATUS_EVERY = 2.0
#: allocations between two collections of the youngest generation (Python's default: 700)
GC_YOUNG = 10_000
#: after this long without a line, sources with nothing to read here are named, once
NOTHING_HERE_AFTER = 2.0
#: a commit that failed (state disk full) is retried after these delays: first, doubled, last
COMMIT_RETRY = (0.5, 30.0)


class Waker:
    """A self-pipe: :meth:`wake` from any thread or a signal; :meth:`wait` in the main loop."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        #: held while waking and closing: a thread that outlives the loop (a sender whose
        #: request outlasted the drain, a journal reader) must not write to a descriptor
        #: number closed, and perhaps reused, meanwhile
        self._lock = threading.Lock()
        self._closed = False

    @property
    def fd(self) -> int:
        """The write end, for ``signal.set_wakeup_fd``."""
        return self._write

    def wake(self) -> None:
        """Make the next (or current) :meth:`wait` return now."""
        # a full pipe means a wake-up is already pending
        with self._lock, contextlib.suppress(BlockingIOError):
            if not self._closed:
                os.write(self._write, b"\0")

    def wait(self, timeout: float, fds: Iterable[int] = ()) -> bool:
        """Sleep until woken, one of ``fds`` is readable or ``timeout`` passes; True if woken.

        Pending wake-ups are swallowed; ``fds`` (inotify) are left for their owners to read.
        """
        ready, _, _ = select.select([self._read, *fds], [], [], max(timeout, 0.0))
        if self._read in ready:
            try:
                while os.read(self._read, 4096):
                    pass
            except BlockingIOError:
                pass
        return bool(ready)

    def close(self) -> None:
        """Close both ends; a :meth:`wake` after this does nothing."""
        with self._lock:
            self._closed = True
            os.close(self._read)
            os.close(self._write)


@dataclass
class _Staged:
    """What has been read and decided but not committed yet (see :meth:`Service._commit`)."""

    alerts: list[Alert] = field(default_factory=list)
    #: the sources read meanwhile, whose checkpoints the commit saves
    sources: dict[str, Source] = field(default_factory=dict)
    #: the destinations of ``alerts``
    to: set[str] = field(default_factory=set)
    #: when the first of it was read (monotonic)
    since: float = math.inf

    def add(self, source: Source, alerts: list[Alert]) -> None:
        """``source`` was read, and ``alerts`` (already in :attr:`alerts`) came of it."""
        self.sources[source.name] = source
        self.to.update(d for alert in alerts for d in alert.to)
        self.since = min(self.since, time.monotonic())


@dataclass
class _Stats:
    lines: int = 0
    alerts: int = 0
    window_start: float = field(default_factory=time.monotonic)
    window_lines: int = 0
    rate: float = 0.0

    def count(self, lines: int, alerts: int) -> None:
        self.lines += lines
        self.alerts += alerts
        self.window_lines += lines
        elapsed = time.monotonic() - self.window_start
        if elapsed >= 5.0:
            self.rate = self.window_lines / elapsed
            self.window_start, self.window_lines = time.monotonic(), 0


class Service:
    """logwatch running one configuration; :meth:`reload` swaps in another."""

    def __init__(
        self,
        config: Config,
        *,
        dry_run: bool = False,
        clock: Callable[[], float] = time.time,
        notifier: Notifier | None = None,
    ) -> None:
        self.config = config
        self.dry_run = dry_run
        self.clock = clock
        self.notifier = notifier or Notifier.from_environ()
        self.waker = Waker()
        self.should_exit = False
        self.reload_requested = False
        self.stats = _Stats()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._lock: StateLock | None = None
        #: what happened to a damaged state database, to alert about once started
        self._state_note: str | None = None
        self._disk_full_alerted = False
        self.state = self._open_state()
        self._checkpointer = Checkpointer(self.state)
        self.fleet = self._fleet_link(config)
        self.policy = self._new_policy(config)
        self.sources: list[Source] = []
        self.matchers: dict[str, Matcher] = {}
        #: per source whose rules take fields from earlier lines: what they remember
        self.contexts: dict[str, ContextMemory] = {}
        self.senders: dict[str, Sender] = {}
        self._staged = _Staged()
        self._announced_failing: set[str] = set()
        self._last_data: dict[str, float] = {}
        self._silent_warned: set[str] = set()
        self._started = time.monotonic()
        #: sources that have produced data since start
        self._read: set[str] = set()
        self._nothing_here_checked = False
        self._last_ping = 0.0
        self._last_tick = float("-inf")
        self._last_prune = 0.0
        self._last_status = float("-inf")
        self._last_fleet_status = float("-inf")
        #: how long a pump that read lines takes (wall time, a moving average)
        self._pump_time = 0.0

    def _fleet_link(self, config: Config) -> FleetLink | None:
        """The link to the fleet's Redis (none without [fleet], nor in a dry run)."""
        if config.fleet is None or self.dry_run:
            return None
        from logwatch.fleet.link import FleetLink

        return FleetLink(config.fleet, config.settings.hostname)

    def _new_policy(self, config: Config) -> Policy:
        if self.fleet is None:
            return Policy(config, self.clock)
        from logwatch.fleet.policy import FleetPolicy
        from logwatch.fleet.redisstore import RedisStore

        return Policy(config, self.clock, fleet=FleetPolicy(RedisStore(self.fleet), config))

    def _open_state(self) -> State:
        if self.dry_run:
            # a dry run must not mark lines as handled for the real daemon
            self._tmp = tempfile.TemporaryDirectory(prefix="logwatch-dry-run-")
            return State(Path(self._tmp.name))
        self._lock = StateLock.acquire(self.config.settings.state_dir)
        state, self._state_note = open_state(self.config.settings.state_dir)
        return state

    # -- life cycle ---------------------------------------------------------

    def startup(self, *, freeze: bool = False) -> None:
        """Open state, sources and senders; tell the user and systemd what runs.

        ``freeze``: the daemon's own process (:meth:`serve`), where what start-up built
        can be kept out of the garbage collector's passes (:func:`_freeze_startup_objects`).
        """
        with self.state.transaction() as conn:
            self.policy.load(conn)
        self._start_sources()
        self._start_senders()
        metrics.configure(self.config.metrics_listen).watch(
            self.state.path, list(self.config.destinations), list(self.config.sources),
            [rule.id for rule in self.config.rules])
        if self._state_note is not None:
            self._commit([self._logwatch_alert("state database damaged", self._state_note)])
            self._state_note = None
        if freeze:
            _freeze_startup_objects()
        self._banner()
        self.notifier.ready(self._status_line())

    def _switch(self, config: Config) -> None:
        """Stop the running sources and senders and start ``config``'s from the saved state."""
        # every chunk read so far is committed, so the state holds exactly where we are
        self._commit_staged()
        for source in self.sources:
            source.close()
        self._stop_senders(timeout=1.0)
        self.config = config
        if self.fleet is not None:
            self.fleet.close()
        self.fleet = self._fleet_link(config)
        self.policy = self._new_policy(config)
        self.startup(freeze=True)

    def main_loop(self) -> None:
        """Read, match, decide and commit until asked to stop.

        It reads before it first sleeps: a backlog (``start_at = "beginning"``, a
        restart after an outage) is caught up at once, and :meth:`pump` returns only
        when no source has anything left, so nothing waits while lines are unread.
        """
        while not self.should_exit:
            if self.reload_requested:
                self.reload_requested = False
                self.reload()
            pumped = time.monotonic()
            read = self.pump()
            self._commit_when_due()
            self._tick_when_due()
            self._keepalive()
            if self.should_exit:
                break
            if read:
                # lines are coming: gather the next ones now rather than sleep until the
                # first wakes the loop, then gather (one wake-up a batch, not two)
                self._gather(pumped)
            elif self.waker.wait(self._sleep_time(), self._fds()):
                # the last read found nothing, so nothing came for about batch_wait: the
                # first lines after a quiet spell are read at once (an SSH failure on a
                # quiet server goes out in milliseconds), those that follow are gathered
                self._commit_when_due()  # a sender is free: what waited for it goes now

    def _tick_when_due(self) -> None:
        """:meth:`tick`, at most every TICK_EVERY: under a trickle the loop wakes a dozen times a
        second, and its timers (windows of seconds or more) need not be looked at that often."""
        now = time.monotonic()
        if now - self._last_tick >= TICK_EVERY:
            self._last_tick = now
            self.tick()

    def _fds(self) -> list[int]:
        """The sources' descriptors to wait on besides the self-pipe (inotify)."""
        return [fd for source in self.sources if (fd := source.fileno()) is not None]

    def _gather(self, since: float) -> None:
        """Let lines gather for ``batch_wait`` before reading (see docs/architecture.md).

        A writer logs in bursts of small writes, each an inotify event: reading at the
        first would pay a match and a commit per write. Waiting a bounded time lets the
        rest arrive, so they cost one of each. ``since``: when the first of them may have
        come (the start of the last pump, which read lines: the loop gathers right after
        it), so a line is late by about ``batch_wait`` plus its batch's work, not twice
        that; and the work a read takes (:attr:`_pump_time`) is taken off the wait, down
        to GATHER_LEAST of it, so that a line's alert is committed about ``batch_wait``
        after it came however busy the server. Staged alerts whose destination's pace
        opens meanwhile are committed then.
        """
        wait = self.config.settings.batch_wait
        ends = since + max(wait - self._pump_time, wait * GATHER_LEAST)
        while not self.should_exit and not self.reload_requested:
            now = time.monotonic()
            if now >= ends:
                return
            due = self._commit_due(now)
            if due <= now:
                self._commit()
            else:
                time.sleep(min(ends, due) - now)

    def shutdown(self) -> None:
        """Stop reading, let senders drain for ``drain_timeout``, commit, close."""
        self.notifier.stopping()
        self.should_exit = True  # a commit that fails now is not retried for ever
        self._commit_staged()
        log.info("stopping: draining the outbox for up to %.0fs",
                 self.config.settings.drain_timeout)
        for source in self.sources:
            source.close()
        self._stop_senders(self.config.settings.drain_timeout)
        pending = self._pending()
        if pending:
            log.info("stopped with %d alert(s) pending in the outbox; they go out at next start",
                     pending)
        self._checkpointer.stop()
        self.state.close()
        if self._lock is not None:
            self._lock.release()
        self.waker.close()
        metrics.configure(None)
        if self.fleet is not None:
            self.fleet.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def serve(self, early: EarlyStop | None = None) -> int:
        """Install signal handlers and run until SIGTERM / SIGINT; the exit code.

        ``early`` holds the signals that came while the config was being loaded: a
        SIGTERM then is a clean stop too (start, stop at once, exit 0, nothing lost).
        """
        self._install_signals()
        if early is not None and early.stop_requested:
            self.should_exit = True
        self.startup(freeze=True)
        try:
            self.main_loop()
        finally:
            self.shutdown()
        return 0

    # -- the pipeline ---------------------------------------------------------

    def pump(self) -> bool:
        """Read every source until none has a backlog left (or we must stop); whether any
        line was read (the wall time it took is remembered: see :meth:`_gather`).

        A source whose read stopped at a limit (READ_BUDGET, ALERTS_PER_COMMIT,
        TRANSACTION_TIME) has more waiting: it is read again at once. One that read all
        there was is not, even if its writer has added lines meanwhile: the main loop
        gathers them for ``batch_wait`` (:meth:`_gather`), rather than being chased a few
        lines at a time (a commit each) while a busy writer keeps going.
        """
        started = time.monotonic()
        read = False
        behind = [source for source in self.sources if source.pending()]
        while behind and not self.should_exit:
            progress = [(source, self._process(source)) for source in behind]
            read = read or any(done != "idle" for _, done in progress)
            behind = [source for source, done in progress if done == "more"]
            self._keepalive()
        if read:
            self._pump_time += (time.monotonic() - started - self._pump_time) * PUMP_TIME_WEIGHT
        return read

    def _process(self, source: Source) -> Progress:
        """Read, match and feed ``source``'s new lines, commit alerts and checkpoint as one.

        Up to READ_BUDGET bytes, a piece at a time, or fewer once ALERTS_PER_COMMIT
        alerts are waiting or TRANSACTION_TIME has passed: the checkpoint then covers
        exactly the pieces read, and the rest is read by the next call ("more").
        "idle": there was nothing new; "done": all there was is read (and staged: see
        :meth:`_commit_when_due`).
        """
        alerts = self._staged.alerts
        first = len(alerts)
        lines = size = 0
        piece = FIRST_PIECE
        ends = time.monotonic() + TRANSACTION_TIME
        progress: Progress = "done"
        while True:
            if size >= READ_BUDGET or len(alerts) >= ALERTS_PER_COMMIT or (
                    size and time.monotonic() >= ends):
                progress = "more"
                break
            chunks = source.read(piece)
            if not chunks:
                break
            got, before = sum(len(chunk.data) for chunk in chunks), len(alerts)
            size += got
            lines += self._match(chunks, alerts)
            self._keepalive()  # many slow pieces in one read: systemd's watchdog keeps hearing
            piece = _next_piece(got, len(alerts) - before, ALERTS_PER_COMMIT - len(alerts))
            if not source.pending(queued=False):
                break  # what was written meanwhile woke the loop: batch_wait gathers it
        if not size:
            return "idle"
        self._staged.add(source, alerts[first:])
        self._commit_when_due()
        self._last_data[source.name] = time.monotonic()
        self._read.add(source.name)
        self._silent_warned.discard(source.name)
        self.stats.count(lines, len(alerts) - first)
        metrics.current().lines_read(source.name, lines)
        return progress

    def _match(self, chunks: list[Chunk], alerts: list[Alert]) -> int:
        """Append the alerts the lines of ``chunks`` cause to ``alerts``; how many lines.

        One scan for all the chunks of a read (200 files written to: one scan, not 200):
        they are whole lines, so joined they are the same lines, and each match is
        mapped back to its chunk for the line's key. A rule's context looks back over
        them in that order, the source's line order.
        """
        data = chunks[0].data if len(chunks) == 1 else b"".join(c.data for c in chunks)
        starts = list(accumulate((len(c.data) for c in chunks[:-1]), initial=0))
        chunk = chunks[0]
        lines = newlines(data, 0, len(data))
        feed, recorder = self.policy.feed, metrics.current()
        count_hit = recorder.hit if recorder.enabled else None
        found = self.matchers[chunk.source].find(data, groups=True)
        memory = self.contexts.get(chunk.source)
        hits = found.hits() if memory is None else memory.follow(found, data, lines)
        # a file's line key, written out (Chunk.line_key); a journal's chunk asks its cursors
        base = end = offset = 0  # no chunk yet: the first hit finds its own
        stream, source, origin, plain = "", "", "", True
        for start, text, rule, kind, fields in hits:
            if not base <= start < end:
                index = bisect_right(starts, start) - 1
                chunk, base = chunks[index], starts[index]
                end = base + len(chunk.data)
                stream, offset = f"{chunk.stream}@", chunk.offset
                source, origin = chunk.source, chunk.origin
                plain = chunk.cursors is None and chunk.times is None
            if count_hit is not None:
                count_hit(rule)
            if plain:
                line = LogLine(text, source, origin, f"{stream}{offset + start - base}")
            else:
                line = LogLine(text, source, origin, chunk.line_key(start - base),
                               chunk.line_time(start - base))
            alerts += feed(Hit(rule, fields, line, kind))
        return lines

    def _commit_due(self, now: float) -> float:
        """When what is staged must be committed (monotonic; ``inf``: nothing is staged).

        At once when one of its alerts could be sent now, so that no alert waits for a
        commit, and once STAGED_MOST alerts or policy rows wait (a commit stays short);
        when a destination's pace opens for alerts that wait for it; within COMMIT_WITHIN
        in any case (lines without alerts, destinations with a backlog, which send those
        first). Fewer commits: each costs more than reading a few lines. ``now``: the
        caller's clock reading, which "at once" is (a later reading made the caller sleep a
        microsecond and ask again, in a loop).
        """
        staged = self._staged
        if not staged.sources:
            return math.inf
        if (len(staged.alerts) >= STAGED_MOST or self.policy.changed >= STAGED_MOST
                or self.should_exit or self.reload_requested):
            return now
        due = staged.since + COMMIT_WITHIN
        for name in staged.to:
            sender = self.senders.get(name)
            due = min(due, now if sender is None else sender.ready_at(now))
        return due

    def _commit_when_due(self) -> None:
        now = time.monotonic()
        if self._commit_due(now) <= now:
            self._commit()

    def _commit_staged(self) -> None:
        if self._staged.sources:
            self._commit()

    def _on_sender_free(self) -> None:
        """A sender's backlog is gone (its thread): alerts staged for it may go now."""
        if self._staged.to:
            self.waker.wake()

    def _commit(self, extra: Iterable[Alert] = ()) -> None:
        """Commit what is staged, plus ``extra`` alerts, with the policy: one transaction."""
        staged, self._staged = self._staged, _Staged()
        alerts = staged.alerts + list(extra)
        now = time.monotonic()
        status = now - self._last_status >= STATUS_EVERY
        delay = COMMIT_RETRY[0]
        while True:
            try:
                with self.state.transaction() as conn:
                    outbox.enqueue(conn, alerts)
                    self.policy.save(conn, status=status)
                    for source in staged.sources.values():
                        if (memory := self.contexts.get(source.name)) is not None:
                            memory.save(conn)  # with the checkpoint: a crash replays onto it
                        put_text(conn, "checkpoint", source.name, source.checkpoint_text())
                break
            except (StateError, sqlite3.Error) as exc:
                # the checkpoint did not move: the lines stay unread on disk, nothing is lost
                self.policy.save_failed()
                if self.should_exit:
                    log.error("state: %s; stopping with these lines unread: they are read "
                              "again at the next start", exc)
                    return
                self._commit_failed(exc, delay)
                delay = min(delay * 2, COMMIT_RETRY[1])
        metrics.current().queued(alerts)
        if self._disk_full_alerted:
            self._disk_full_alerted = False
            log.info("state: commits succeed again")
        if status:
            self._last_status = now
        if alerts:
            for name in {d for a in alerts for d in a.to}:
                if (sender := self.senders.get(name)) is not None:
                    sender.wake()

    def _commit_failed(self, exc: StateError | sqlite3.Error, delay: float) -> None:
        """Log (once), alert directly (the outbox is what cannot be written), wait ``delay``."""
        if not self._disk_full_alerted:
            self._disk_full_alerted = True
            log.error("state: %s; keeping the lines unread and retrying (up to every %gs)", exc,
                      COMMIT_RETRY[1])
            what = "state disk full" if "full" in str(exc) else "state cannot be written"
            self._alert_directly(self._logwatch_alert(
                what, f"logwatch cannot write its state ({exc}); it keeps the "
                "lines unread and retries, alerts wait until the state can be written."))
        self._keepalive()
        self.waker.wait(delay)

    def _alert_directly(self, alert: Alert) -> None:
        """Send ``alert`` through each destination now, bypassing the outbox (best effort)."""
        for name, sender in self.senders.items():
            dest = sender.destination
            try:
                outcome = dest.send(dest.render([alert]))
            except Exception as exc:  # a last resort must not take the loop down
                outcome_text = f"failed ({type(exc).__name__})"
            else:
                outcome_text = outcome.verdict
            log.info('state: direct alert to "%s": %s', name, outcome_text)

    def _logwatch_alert(self, what: str, detail: str) -> Alert:
        """An alert from logwatch itself about itself, to every destination."""
        host = self.config.settings.hostname
        now = self.clock()
        return Alert(
            id=alert_id("system", "state", what, str(now)), kind="system", rule="logwatch",
            severity="critical", title=f"logwatch on {host}: {what}", message=detail,
            source="logwatch", host=host, time=now, to=tuple(self.config.destinations),
        )

    def _save_status(self) -> None:
        """Bring the policy's ``logwatch status`` lines up to date once the sources are idle.

        At most once per STATUS_EVERY: under a trickle every wake-up is an idle moment,
        and the lines cost a pass over every live key (:meth:`_sleep_time` wakes for it).
        """
        if self.policy.status_stale and time.monotonic() - self._last_status >= STATUS_EVERY:
            with self.state.transaction() as conn:
                self.policy.save_status(conn)
            self._last_status = time.monotonic()

    def tick(self) -> None:
        """Timers: policy summaries and digests, failing destinations, silent sources."""
        alerts = self.policy.tick(self.clock()) + self._destination_alerts()
        if alerts:
            self._commit(alerts)
        self._save_status()
        self._fleet_status()
        self._warn_nothing_here()
        self._warn_silent_sources()
        self._prune_outbox()

    def _fleet_status(self) -> None:
        """Probe a down fleet link (it reconnects by itself) and keep its status for `status`."""
        now = time.monotonic()
        if self.fleet is None or now - self._last_fleet_status < FLEET_STATUS_EVERY:
            return
        self._last_fleet_status = now
        if not self.fleet.up or self.fleet.latency is None:
            self.fleet.ping()
        info = self.fleet.status()
        failed_open = sum(sum(s.fleet.fail_open.values()) for s in self.senders.values()
                          if s.fleet is not None)
        info["failed_open"] = failed_open + (self.policy.fleet.fail_open
                                             if self.policy.fleet is not None else 0)
        with self.state.transaction() as conn:
            put_value(conn, "fleet", "link", info)

    def _prune_outbox(self) -> None:
        now = self.clock()
        if now - self._last_prune < PRUNE_EVERY:
            return
        self._last_prune = now
        with self.state.transaction() as conn:
            gone = outbox.prune(conn, older_than=now - OUTBOX_RETENTION)
        if gone:
            log.debug("outbox: forgot %d delivered row(s) older than %.0f days", gone,
                      OUTBOX_RETENTION / 86400)

    # -- reload ---------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the config; keep the running one if the new one is invalid."""
        self.notifier.reloading()
        try:
            new = load_config(self.config.path)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload: %s", problem)
            log.error("reload: the new configuration has %d error(s); still running the old one",
                      len(exc.problems))
            self.notifier.ready(self._status_line())
            return False
        log.info("reload: %s: %d rules, %d sources, %d destinations", new.path, len(new.rules),
                 len(new.sources), len(new.destinations))
        self._switch(new)
        return True

    # -- parts ----------------------------------------------------------------

    def _start_sources(self) -> None:
        settings = self.config.settings
        self.sources = build_sources(self.config, self.waker.wake)
        self.matchers = {
            s.name: Matcher(self.config.rules_for(s.name), ignore=settings.ignore,
                            timeout=settings.match_timeout, on_slow=self._keepalive)
            for s in self.sources
        }
        conn = self.state.conn
        self.contexts = {}
        for source in self.sources:
            memory = ContextMemory.of(self.config.rules_for(source.name), source.name)
            if memory is not None:
                memory.load(conn)
                self.contexts[source.name] = memory
        for source in self.sources:
            source.open(get_value(conn, "checkpoint", source.name))
            self._last_data[source.name] = time.monotonic()
        # saved at once: a line written while stopped after a first run that read
        # nothing is then read from this position, not skipped by start_at = "end"
        try:
            with self.state.transaction() as conn:
                for source in self.sources:
                    put_value(conn, "checkpoint", source.name, source.checkpoint())
        except StateError as exc:  # disk full: the first commit that works saves them
            log.warning("state: cannot save the starting positions yet: %s", exc)

    def _start_senders(self) -> None:
        self.senders = build_senders(self.config, self.state, dry_run=self.dry_run,
                                     fleet=self.fleet, on_free=self._on_sender_free)
        for sender in self.senders.values():
            sender.start()

    def _stop_senders(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for sender in self.senders.values():
            sender.stop(max(deadline - time.monotonic(), 0.0))

    def _banner(self) -> None:
        mode = " (dry run: nothing is posted, state is not kept)" if self.dry_run else ""
        log.info("logwatch %s: %d rules%s", self.config.path, len(self.config.rules), mode)
        log.info("  matching engine: %s", engine.current().describe())
        for source in self.sources:
            for line in source.describe():
                log.info("  %s", line)
        for name, dest in self.config.destinations.items():
            log.info("  sends to %s (%s, %s and above)", name, dest.type, dest.min_severity)
        if self.fleet is not None:
            log.info("  coordinates with the fleet through %s (namespace %s) as %s",
                     self.fleet.settings.where, self.fleet.namespace, self.fleet.host)

    def _destination_alerts(self) -> list[Alert]:
        """One alert to the others when a destination has failed too long, one when it recovers."""
        now = self.clock()
        out = []
        for name, sender in self.senders.items():
            since = sender.failing_since
            failing = since is not None and now - since >= self.config.settings.failing_after
            if failing and name not in self._announced_failing:
                self._announced_failing.add(name)
                out.append(self._system_alert(name, "failing", f"since {time.ctime(since)}: "
                                              f"{sender.last_error or 'unknown error'}", since))
            elif since is None and name in self._announced_failing:
                self._announced_failing.discard(name)
                out.append(self._system_alert(name, "recovered", "delivering again", now))
        return [a for a in out if a.to]

    def _system_alert(self, name: str, what: str, detail: str, when: float | None) -> Alert:
        others = tuple(d for d, sender in self.senders.items()
                       if d != name and sender.failing_since is None)
        host = self.config.settings.hostname
        return Alert(
            id=alert_id("system", name, what, str(when)),
            kind="system", rule="logwatch", severity="critical" if what == "failing" else "info",
            title=f'logwatch on {host}: destination "{name}" {what}',
            message=f'Alerts to "{name}" are {"not " if what == "failing" else ""}'
                    f"being delivered ({detail}).",
            source="logwatch", host=host, time=self.clock(), to=others,
        )

    def _warn_nothing_here(self) -> None:
        """Once, soon after start: one line naming the sources with nothing to read here."""
        if self._nothing_here_checked or time.monotonic() - self._started < NOTHING_HERE_AFTER:
            return
        self._nothing_here_checked = True
        by_reason: dict[str, list[str]] = {}
        for source in self.sources:
            check: Callable[[], str | None] | None = getattr(source, "nothing_here", None)
            if check is not None and (why := check()) is not None and source.name not in self._read:
                by_reason.setdefault(why, []).append(f'source "{source.name}"')
        # one reason once: "auth", "kernel" (no journal files in ...), "nginx" (no ...)
        empty = [f"{', '.join(names)} ({why})" for why, names in by_reason.items()]
        if empty:
            quiet = sum(len(names) for names in by_reason.values())
            what = "this machine" if quiet == len(self.sources) else "some sources"
            log.warning("nothing to read here for %s: their rules stay silent on %s; "
                        "try `logwatch test -c %s SAMPLE.log` on a log from elsewhere, or "
                        "`logwatch send-test -c %s DEST` to try a destination",
                        ", ".join(empty), what, self.config.path, self.config.path)

    def _warn_silent_sources(self) -> None:
        now = time.monotonic()
        for name, source_config in self.config.sources.items():
            limit = source_config.silent_after
            # a source that has produced nothing since the start is silent since the start
            last = self._last_data.get(name, self._started)
            silent = limit is not None and now - last > limit
            if silent and name not in self._silent_warned:
                self._silent_warned.add(name)
                log.warning('source "%s" has been silent for over %.0fs (silent_after)', name,
                            limit)

    def _pending(self) -> int:
        # per destination, so the (destination, status, seq) index answers: this runs every second
        conn = self.state.conn
        return sum(outbox.pending_count(conn, name) for name in self.config.destinations)

    def _status_line(self) -> str:
        return (f"{self.stats.rate:.0f} lines/s, {self.stats.lines} lines, "
                f"{self.stats.alerts} alerts, {self._pending()} pending")

    def _sleep_time(self) -> float:
        interval = self.config.settings.poll_interval
        if self.notifier.watchdog_interval:
            interval = min(interval, self.notifier.watchdog_interval)
        if self.policy.status_stale:
            # the lines are saved by tick(), itself run at most every TICK_EVERY: waking
            # before then would find nothing to do, and wake again at once
            due = max(self._last_status + STATUS_EVERY, self._last_tick + TICK_EVERY)
            interval = min(interval, due - time.monotonic())
        now = time.monotonic()
        return min(interval, self._commit_due(now) - now)

    def _keepalive(self) -> None:
        """Ping the systemd watchdog and refresh STATUS= from the main loop only.

        Outside systemd, nothing: the status line counts each destination's pending rows
        (an outbox query per destination, every second), for no one to read."""
        if not self.notifier.enabled:
            return
        now = time.monotonic()
        if now - self._last_ping >= 1.0:
            self._last_ping = now
            self.notifier.watchdog()
            self.notifier.status(self._status_line())

    # -- signals --------------------------------------------------------------

    def _install_signals(self) -> None:
        signal.set_wakeup_fd(self.waker.fd, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self._on_exit)
        signal.signal(signal.SIGINT, self._on_exit)
        signal.signal(signal.SIGHUP, self._on_reload)

    def _on_exit(self, signum: int, frame: FrameType | None) -> None:
        self.should_exit = True

    def _on_reload(self, signum: int, frame: FrameType | None) -> None:
        self.reload_requested = True


class EarlyStop:
    """Signal handlers for the start-up, before the :class:`Service` installs its own.

    Python's default SIGTERM action kills the process (exit -15) and SIGHUP's too:
    a ``systemctl stop`` or ``reload`` while the config loads must not.
    """

    def __init__(self) -> None:
        self.stop_requested = False
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        # the config is being read right now: a reload asked meanwhile is already served
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_requested = True


def _freeze_startup_objects() -> None:
    """Keep what start-up built (compiled rules, tables, modules) out of the collector's passes.

    Those objects live as long as the configuration; left in the collected generations, each
    full collection walks all of them again while the daemon follows a busy log. A reload
    unfreezes first, so that the old configuration's cycles are collected.

    The youngest generation is collected every GC_YOUNG allocations rather than Python's 700:
    a request's short-lived objects (HTTP models, JSON) no longer set off a collection each,
    which walked the other live objects for nothing (few of ours form cycles).
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG, older, oldest)


def _next_piece(got: int, alerts: int, room: int) -> int:
    """Bytes to read next: what should give ``room`` more alerts at the last piece's rate."""
    if alerts == 0:
        return max(FIRST_PIECE, min(MAX_PIECE, 4 * got))
    return max(FIRST_PIECE, min(MAX_PIECE, got * room // alerts))


def run(config_path: Path, *, dry_run: bool = False) -> int:
    """``logwatch run``: load the config and serve until told to stop."""
    early = EarlyStop()  # first thing: a stop during start-up is a clean stop
    return Service(load_config(config_path), dry_run=dry_run).serve(early)
