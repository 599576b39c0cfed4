"""Delivery: one :class:`Sender` thread per destination, from the outbox, in order.

A sender takes its pending rows in ``seq`` order, renders as many as fit in one
request, waits for its pace, sends, and settles the rows by the :class:`Outcome`:

    ok          rows delivered
    retry       a 429: wait ``retry_after`` (not a failure), same rows again
    backoff     5xx, timeout, connection error: exponential backoff with jitter
                (capped), same rows again; the destination is failing meanwhile
    reject      the service can never take this message: rows dead, carry on
    permanent   bad token, unknown webhook, chat not found: rows dead, one error
                line, destination failing; the rest is held and retried one row
                at a time every ``probe_interval`` until it works (a fixed config
                and a reload or restart delivers them)

A row is marked only after the service answered, so a crash re-sends at most the
one message that was in flight. Destination state (failing since, last error, a
migrated Telegram chat) is kept in the ``kv`` table, namespace ``destination``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import sqlite3
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, TextIO

import logwatch.delivery.outbox as outbox
import logwatch.delivery.pacing as pacing
from logwatch import metrics
from logwatch.config import Config
from logwatch.delivery.destinations import build_destination
from logwatch.delivery.destinations.replies import finite
from logwatch.delivery.destinations.types import Destination, Outcome, Window
from logwatch.models import SEVERITIES, Alert, alert_id
from logwatch.state import State, get_value, get_values, put_value, state_error
from logwatch.supervisor import RESTART_CAP, describe_crash, supervise
from logwatch.terminal import escape_controls

if TYPE_CHECKING:  # the fleet modules load only with [fleet]
    from logwatch.fleet.link import FleetLink
    from logwatch.fleet.sending import FleetSending, Prepared

log = logging.getLogger(__name__)

NS = "destination"
#: how long a sender with nothing to do sleeps before looking again (``wake`` is faster)
IDLE = 5.0
BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0
PROBE_INTERVAL = 300.0
MAX_RETRY_WAIT = 3600.0
#: a bucket's pause that ends within this of the pace's own opening is that opening seen
#: from the service's side (it counts from when it got a request, we from its answer): the
#: request times a restart reads back keep it, so it is not saved (see :meth:`_settle_sent`)
PAUSE_SLACK = 0.25
#: a delivered row's ``done`` this soon after the saved pace's newest request is that request
#: (its rows are marked just after it is recorded, in the transaction that saves the pace)
SAME_REQUEST = 0.1


class Pacer:
    """Sliding windows of recent requests, plus a block a service asked for."""

    def __init__(self, windows: Iterable[Window]) -> None:
        self.windows = tuple(windows)
        self._times: deque[float] = deque(maxlen=max((w.limit for w in self.windows), default=1))
        self._blocked_until = 0.0

    def delay(self, now: float) -> float:
        """Seconds to wait before the next request may go."""
        return max(self._blocked_until - now, self._window_wait(now), 0.0)

    def _window_wait(self, now: float) -> float:
        """What the windows alone ask to wait (0 or less: nothing)."""
        wait = 0.0
        for window in self.windows:
            if len(self._times) >= window.limit:
                wait = max(wait, self._times[-window.limit] + window.per - now)
        return wait

    def blocked_beyond_windows(self, now: float, slack: float) -> bool:
        """The block ends more than ``slack`` s after the windows open by themselves."""
        return self._blocked_until > now + self._window_wait(now) + slack

    def record(self, now: float) -> None:
        """A request finished at ``now`` (its end, so the server saw it no later)."""
        self._times.append(now)

    def block(self, until: float) -> None:
        """Send nothing before ``until``."""
        self._blocked_until = max(self._blocked_until, until)

    def save(self) -> dict[str, Any]:
        """The state to keep across a restart (see :mod:`logwatch.pacing`)."""
        return pacing.to_saved(self._times, self._blocked_until, mono=time.monotonic(),
                               wall=time.time())

    def load(self, saved: Any, cap: float, delivered: Iterable[float] = ()) -> None:
        """Take back what :meth:`save` gave, and the wall times ``delivered`` of requests
        that delivered rows (the rows' ``done``), clamped to ``cap`` seconds."""
        mono, wall, keep = time.monotonic(), time.time(), self._times.maxlen or 0
        sent, blocked = pacing.from_saved(saved, mono=mono, wall=wall, cap=cap, keep=keep)
        done, _ = pacing.from_saved({"sent": list(delivered)}, mono=mono, wall=wall, cap=cap,
                                    keep=keep)
        # the saved pace holds every request up to its newest (the one that saved it): a
        # delivered row's time up to then is one of them, not another
        newest = max(sent, default=-math.inf) + SAME_REQUEST
        self._times.extend(sorted(sent + [t for t in done if t > newest])[-keep:] if keep else ())
        self.block(blocked)


class Signal:
    """A wake-up for one waiting thread: :class:`threading.Event` in one C lock.

    ``Event.wait`` goes through a :class:`threading.Condition` (a new lock, a list of
    waiters, a few Python frames) every time; a sender waits once per request, so that was a
    tenth of its cost per POST. Unlike ``Event.wait``, :meth:`wait` takes the signal it
    returns on (it is set again by the next :meth:`set`), which is what a loop that clears
    before it looks does anyway.
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()  # held: not set

    def set(self) -> None:
        """Wake the waiter (or the next :meth:`wait`); any thread."""
        with contextlib.suppress(RuntimeError):  # already set
            self._lock.release()

    def clear(self) -> None:
        """Forget a :meth:`set` not yet taken."""
        self._lock.acquire(blocking=False)

    def is_set(self) -> bool:
        """Set and not yet taken."""
        return not self._lock.locked()

    def wait(self, timeout: float) -> bool:
        """Until set (True, and taken) or ``timeout`` s have passed (False)."""
        return self._lock.acquire(timeout=max(timeout, 0.0))


def backoff_delay(attempts: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Exponential in ``attempts`` (1, 2, 4, ... s), capped, with jitter in its upper half."""
    delay = min(cap, base * 2 ** min(attempts - 1, 30))
    return random.uniform(delay / 2, delay)  # noqa: S311 - jitter, not cryptography


class Sender:
    """Delivers one destination's outbox rows from its own thread."""

    def __init__(
        self,
        destination: Destination,
        state: State,
        *,
        dry_run: bool = False,
        backoff_base: float = BACKOFF_BASE,
        backoff_cap: float = BACKOFF_CAP,
        probe_interval: float = PROBE_INTERVAL,
        min_severity: str = "info",
        out: TextIO | None = None,
        max_retry_wait: float = MAX_RETRY_WAIT,
        fleet: FleetSending | None = None,
        on_free: Callable[[], None] | None = None,
    ) -> None:
        self.destination = destination
        #: called (from this sender's thread) when its backlog is gone: see :meth:`ready_at`
        self._on_free = on_free
        #: rows are known to wait before any row committed now (a backlog, a retry)
        self._behind = True
        #: claims and shared pacing with the other hosts ([fleet]), or None
        self.fleet = fleet
        self.name = destination.name
        self.state = state
        self.dry_run = dry_run
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.probe_interval = probe_interval
        self.max_retry_wait = max_retry_wait
        self.min_rank = SEVERITIES.index(min_severity)
        self._out = out
        self._pacer = Pacer(destination.pace)
        self._wake = Signal()
        self._stop_at: float | None = None
        #: monotonic time before which nothing can be sent (pacing closed, first row not due):
        #: a wake before then need not read the outbox
        self._not_before = 0.0
        #: the alerts of the rows last read, by seq: a row read again is not decoded again
        self._decoded: dict[int, Alert] = {}
        #: the transaction a send's writes join (see :meth:`_transaction`)
        self._joined: sqlite3.Connection | None = None
        self._thread = threading.Thread(target=self._run, name=f"sender-{self.name}",
                                        daemon=True)
        saved = _sane_saved(get_value(state.conn, NS, self.name))
        self._saved = saved
        #: wall time since when the destination has been failing, None when healthy
        self.failing_since: float | None = saved.get("failing_since")
        #: the last failure, one redacted line
        self.last_error: str | None = saved.get("last_error")
        #: how often the sender loop crashed and was restarted (kept across runs)
        self.restarts: int = saved.get("restarts", 0)
        destination.restore(saved)
        self._pacer.load(saved.get("pace"), max_retry_wait, self._delivered_times())
        self._heal_next_try()
        self._settle: dict[str, Callable[[list[outbox.Row], Outcome], None]] = {
            "ok": self._delivered, "retry": self._rate_limited, "backoff": self._backoff,
            "reject": self._rejected, "permanent": self._permanent,
        }

    def __repr__(self) -> str:
        return f"Sender({self.destination!r})"

    # -- life cycle -----------------------------------------------------------

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def wake(self) -> None:
        """New rows were committed: look now, or when the pace opens if it is closed.

        While nothing may go (:attr:`_not_before`), the new rows queue behind the waiting
        ones and the thread looks by itself at that time: waking it would only put it back
        to sleep, a thread switch and a GIL hand-over per commit for nothing.
        """
        if self._stop_at is None and time.monotonic() < self._not_before:
            return
        self._wake.set()

    def stop(self, timeout: float) -> None:
        """Deliver what is due for at most ``timeout`` s, then stop; the rest stays pending."""
        self._stop_at = time.monotonic() + max(timeout, 0.0)
        self._wake.set()
        if self._thread.is_alive():
            # a request in flight may outlive the drain by its own timeout; its rows stay
            # pending, so a later start sends them (at most this one message twice)
            self._thread.join(max(timeout, 0.0) + 1.0)
        elif self._thread.ident is None:
            self.destination.close()

    def ready_at(self, now: float) -> float:
        """When a row committed at ``now`` could be sent at the soonest (monotonic; any thread).

        Now when this sender is free; when its pace opens if it is free but has just
        sent; never (``inf``) while rows wait before it, which go first: a backlog, a
        retry, a destination that is failing. The main loop commits alerts at once only
        for a destination that could send them; it is woken (``on_free``) when a backlog
        is gone. A fleet sender, whose pace is shared, is always taken as free. ``now`` is the
        caller's clock reading: a free sender answers exactly ``now``, never a microsecond
        later (the caller would sleep that microsecond and ask again, in a loop).
        """
        if self.fleet is not None or not self.destination.posts:
            return now
        if self._behind:
            return math.inf
        return max(now, self._not_before, now + self._pacer.delay(now))

    def _caught_up(self, behind: bool) -> None:
        """Whether rows wait before a new one; tell the main loop when the last one went."""
        was, self._behind = self._behind, behind
        if was and not behind and self._on_free is not None:
            self._on_free()

    @property
    def running(self) -> bool:
        """The thread is alive."""
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            supervise(f'sender "{self.name}"', self._loop, report=self._crashed,
                      pause=self._pause, redact=self.destination.redact,
                      restarts=self.restarts, base=self.backoff_base,
                      cap=min(self.backoff_cap, RESTART_CAP))
        finally:
            self.destination.close()
            self.state.close()

    def _loop(self) -> None:
        while True:
            self._wake.clear()
            if self._stop_at is None and (left := self._not_before - time.monotonic()) > 0:
                # woken by a commit while nothing may go yet: what it added waits its turn
                self._wake.wait(self._bounded(left))
                continue
            try:
                delay = self.step()
            except (sqlite3.Error, OSError) as exc:
                log.error('destination "%s": state database: %s; retrying', self.name, exc)
                delay = 1.0
            if delay is None:
                break
            if delay > 0:
                self._wake.wait(self._bounded(delay))

    def _crashed(self, line: str, restarts: int) -> None:
        """The loop raised: keep the count, and let ``status`` name the error."""
        self.restarts = restarts
        self._remember(restarts=restarts)
        self._set_failing(self.failing_since or time.time(), f"sender crashed: {line}",
                          permanent=bool(self._saved.get("permanent")))

    def _pause(self, delay: float) -> bool:
        """Wait ``delay`` s before a restart; True when asked to stop meanwhile."""
        deadline = time.monotonic() + delay
        while self._stop_at is None and (left := deadline - time.monotonic()) > 0:
            self._wake.wait(left)
            self._wake.clear()
        return self._stop_at is not None

    def _delivered_times(self) -> list[float]:
        """When the last requests that delivered rows ended (wall times): a request whose
        rows were all delivered saves no pace of its own (:meth:`_settle_sent`)."""
        if not self.destination.posts:
            return []
        keep = max((w.limit for w in self.destination.pace), default=1)
        return outbox.recent_done(self.state.conn, self.name, keep * self.destination.max_batch)

    def _heal_next_try(self) -> None:
        """Rows scheduled absurdly far ahead (an older bug, a larger cap) are due within the cap."""
        latest = time.time() + max(self.max_retry_wait, self.backoff_cap, self.probe_interval)
        with self._transaction() as conn:
            healed = outbox.clamp_next_try(conn, self.name, latest)
        if healed:
            log.warning('destination "%s": %d alert(s) were scheduled too far ahead; retrying '
                        "them within %.0fs", self.name, healed, latest - time.time())

    def _bounded(self, delay: float) -> float:
        if not math.isfinite(delay):
            delay = self.max_retry_wait
        delay = min(delay, max(self.max_retry_wait, self.backoff_cap, self.probe_interval))
        if self._stop_at is None:
            return delay
        return max(min(delay, self._stop_at - time.monotonic()), 0.0)

    # -- one step ------------------------------------------------------------

    def step(self) -> float | None:
        """Send at most one message; how long to wait before the next step (None: stop)."""
        stopping = self._stop_at is not None
        if self._stop_at is not None and time.monotonic() >= self._stop_at:
            return None
        if not stopping and (paced := self._pacer.delay(time.monotonic())) > 0:
            return self._hold(paced)  # whatever the outbox holds, none of it may go yet
        rows, everything = self._read()
        if not rows:
            self._caught_up(False)
            return None if stopping else IDLE
        wait = max(rows[0].next_try - time.time(), self._pacer.delay(time.monotonic()))
        self._caught_up(True)
        if wait > 0:
            if self._stop_at is not None and time.monotonic() + wait > self._stop_at:
                return None
            return self._hold(wait)
        if self._skip_below_min(rows):
            return 0.0
        if self.fleet is not None:
            return self._fleet_step(self.fleet, rows)
        sent = self._send(rows)
        if everything and sent == len(rows):
            self._caught_up(False)
            if not stopping:
                return IDLE  # that was all of the outbox: what comes next comes with a wake
        if not stopping and (paced := self._pacer.delay(time.monotonic())) > 0:
            return self._hold(paced)  # what the next step would find first: no step for it
        return 0.0

    def _read(self) -> tuple[list[outbox.Row], bool]:
        """The rows the next message may carry, and whether they are all the pending ones."""
        # probing a destination that refused us goes one row at a time: read no more
        limit = 1 if self._saved.get("permanent") else self.destination.max_batch
        rows = outbox.pending(self.state.conn, self.name, limit, known=self._decoded)
        self._decoded = {r.seq: r.alert for r in rows}
        return rows, len(rows) < limit

    def _fleet_step(self, fleet: FleetSending, rows: list[outbox.Row]) -> float:
        """Send what the other hosts leave to this one (claims, shared pacing)."""
        prepared = fleet.prepare(rows, self.state)
        # what the next read finds of these rows: their saved alerts, not the ones read
        self._decoded.update((row.seq, row.alert) for row in prepared.revised)
        if not prepared.rows:
            return prepared.wait
        self._send(prepared.rows, prepared)
        return 0.0

    def _hold(self, wait: float) -> float:
        """Nothing may be sent for ``wait`` s (rows keep their order, so neither may new ones)."""
        self._not_before = time.monotonic() + wait
        return wait

    def _skip_below_min(self, rows: list[outbox.Row]) -> bool:
        if not self.min_rank:
            return False  # min_severity "info": every alert goes
        low = [r.seq for r in rows if SEVERITIES.index(r.alert.severity) < self.min_rank]
        if low:
            with self._transaction() as conn:
                outbox.finish(conn, low, "skipped", "below min_severity")
        return bool(low)

    def _send(self, rows: list[outbox.Row], prepared: Prepared | None = None) -> int:
        """Send what of ``rows`` fits in one message and settle it; how many were delivered."""
        message = self.destination.render([r.alert for r in rows])
        batch = rows[:message.count]
        if self.dry_run and self.destination.posts:
            print(f"--- {self.name} ({self.destination.kind}) would send {len(batch)} "
                  f"alert(s):\n{_shown(message.preview)}", file=self._out or sys.stdout, flush=True)
            outcome = Outcome("ok")
        else:
            started = time.monotonic()
            outcome = self.destination.send(message).clamped(self.max_retry_wait)
            self._pacer.record(time.monotonic())
            metrics.current().request(self.name, time.monotonic() - started)
        if outcome.pause:
            self._pacer.block(time.monotonic() + outcome.pause)
        if self.fleet is not None and prepared is not None:
            self.fleet.settle(prepared, batch, outcome)
        self._settle_sent(batch, outcome)
        if outcome.verdict != "ok":
            return 0
        metrics.current().delivered(self.name, [r.alert for r in batch])
        return len(batch)

    # -- settling ------------------------------------------------------------

    def _settle_sent(self, batch: list[outbox.Row], outcome: Outcome) -> None:
        """The rows, what the destination taught us and the pace: one commit, so none is
        kept without the others."""
        if self._only_delivered(batch, outcome):
            self._finish_alone(batch)
            return
        with self._transaction():
            if outcome.remember:
                self._remember(**outcome.remember)
            self._settle[outcome.verdict](batch, outcome)
            if self.destination.posts and not self.dry_run:
                self._remember(pace=self._pacer.save())

    def _finish_alone(self, batch: list[outbox.Row]) -> None:
        """Mark ``batch`` delivered with one UPDATE, its own transaction (autocommit, with the
        busy timeout as ``BEGIN IMMEDIATE`` has): the rows' ``done`` is the request's time,
        all a restart's pace needs of it (:meth:`_delivered_times`), so no pace row is
        written. Its failure (a full disk) is the state's, as a failed COMMIT is: the loop is
        restarted with its backoff and ``status`` names it, rather than a retry a second
        later that would post the batch again and again."""
        try:
            outbox.finish(self.state.conn, [r.seq for r in batch], "delivered")
        except sqlite3.Error as exc:
            raise state_error(self.state.path, exc, "cannot commit: ") from exc

    def _only_delivered(self, batch: list[outbox.Row], outcome: Outcome) -> bool:
        """An answer that delivers ``batch`` and changes nothing else a restart needs: no
        value to remember, no block the request times do not imply (a bucket's pause that
        outlasts the pace), a healthy destination."""
        if outcome.pause and self._pacer.blocked_beyond_windows(time.monotonic(), PAUSE_SLACK):
            return False  # a restart could not tell this block from the request times
        return (outcome.verdict == "ok" and not outcome.remember
                and self.failing_since is None and not self._saved.get("permanent")
                and len(batch) <= outbox.FINISH_MOST and self._joined is None)

    def _delivered(self, batch: list[outbox.Row], outcome: Outcome) -> None:
        with self._transaction() as conn:
            outbox.finish(conn, [r.seq for r in batch], "delivered")
        if self.failing_since is not None or self._saved.get("permanent"):
            log.info('destination "%s": delivering again', self.name)
            self._set_failing(None, None, permanent=False)

    def _rate_limited(self, batch: list[outbox.Row], outcome: Outcome) -> None:
        metrics.current().rate_limited(self.name)
        wait = outcome.retry_after or 0.0
        if wait > 0:
            log.info('destination "%s": rate limited, waiting %.2fs', self.name, wait)
            self._pacer.block(time.monotonic() + wait)
        with self._transaction() as conn:
            outbox.reschedule(conn, batch[0].seq, time.time() + wait, outcome.reason,
                              attempt=False)

    def _backoff(self, batch: list[outbox.Row], outcome: Outcome) -> None:
        attempts = batch[0].attempts + 1
        delay = backoff_delay(attempts, self.backoff_base, self.backoff_cap)
        log.warning('destination "%s": %s (attempt %d); retrying in %.1fs', self.name,
                    outcome.reason, attempts, delay)
        with self._transaction() as conn:
            outbox.reschedule(conn, batch[0].seq, time.time() + delay, outcome.reason)
        self._set_failing(self.failing_since or time.time(), outcome.reason,
                          permanent=bool(self._saved.get("permanent")))

    def _rejected(self, batch: list[outbox.Row], outcome: Outcome) -> None:
        log.error('destination "%s": %s; %d alert(s) marked dead', self.name, outcome.reason,
                  len(batch))
        with self._transaction() as conn:
            outbox.finish(conn, [r.seq for r in batch], "dead", outcome.reason)

    def _permanent(self, batch: list[outbox.Row], outcome: Outcome) -> None:
        if self._saved.get("permanent"):
            # already reported: keep the row, probe again later, say nothing new
            if outcome.reason != self.last_error:
                log.error('destination "%s": still failing: %s', self.name, outcome.reason)
            with self._transaction() as conn:
                outbox.reschedule(conn, batch[0].seq, time.time() + self.probe_interval,
                                  outcome.reason)
            self._set_failing(self.failing_since or time.time(), outcome.reason, permanent=True)
            return
        log.error('destination "%s": %s; %d alert(s) marked dead, the rest held and retried '
                  "every %.0fs until this is fixed", self.name, outcome.reason, len(batch),
                  self.probe_interval)
        with self._transaction() as conn:
            outbox.finish(conn, [r.seq for r in batch], "dead", outcome.reason)
        self._set_failing(self.failing_since or time.time(), outcome.reason, permanent=True)
        self._pacer.block(time.monotonic() + self.probe_interval)

    # -- destination state -----------------------------------------------------

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """A state transaction; one already open is joined, so a send commits once."""
        if self._joined is not None:
            return contextlib.nullcontext(self._joined)  # no generator for a join
        return self._own_transaction()

    @contextmanager
    def _own_transaction(self) -> Iterator[sqlite3.Connection]:
        saved = self._saved
        try:
            with self.state.transaction() as conn:
                self._joined = conn
                yield conn
        except BaseException:
            self._saved = saved  # not committed, so not remembered: written again next time
            raise
        finally:
            self._joined = None

    def _set_failing(self, since: float | None, error: str | None, *, permanent: bool) -> None:
        self.failing_since = since
        if error is not None:
            self.last_error = error
        self._remember(failing_since=since, last_error=self.last_error,
                       permanent=permanent or None)

    def _remember(self, **values: Any) -> None:
        saved = {**self._saved, **values}
        saved = {k: v for k, v in saved.items() if v is not None}
        if saved != self._saved:
            self._saved = saved
            with self._transaction() as conn:
                put_value(conn, NS, self.name, saved or None)


def _shown(text: str) -> str:
    """``text`` for a terminal: its lines kept, control characters (log text) escaped."""
    return "\n".join(escape_controls(line) for line in text.split("\n"))


def build_senders(config: Config, state: State, *, dry_run: bool = False,
                  fleet: FleetLink | None = None,
                  on_free: Callable[[], None] | None = None) -> dict[str, Sender]:
    """One sender per configured destination (not started); ``fleet``: coordinate sends;
    ``on_free``: called when a sender's backlog is gone (:meth:`Sender.ready_at`)."""
    senders = {}
    for name, dest in config.destinations.items():
        destination = build_destination(dest)
        sharing = None
        if fleet is not None and not dry_run:
            from logwatch.fleet.redisstore import RedisStore
            from logwatch.fleet.sending import FleetSending

            sharing = FleetSending(RedisStore(fleet), fleet.host, config, name,
                                   destination.pace)
        senders[name] = Sender(destination, state, dry_run=dry_run,
                               min_severity=dest.min_severity,
                               max_retry_wait=config.settings.max_retry_wait, fleet=sharing,
                               on_free=on_free)
    return senders


def sample_alert(config: Config) -> Alert:
    """The alert ``send-test`` posts."""
    host = config.settings.hostname
    now = time.time()
    return Alert(
        id=alert_id("send-test", str(now)), kind="system", rule="send-test", severity="info",
        title=f"logwatch test message from {host}",
        message="If you can read this, logwatch can deliver alerts here.",
        source="logwatch", host=host, time=now,
    )


def send_test(config: Config, name: str) -> tuple[bool, str]:
    """Post a test alert to destination ``name`` now; (arrived, plain one-line explanation)."""
    dest = build_destination(config.destinations[name])
    try:
        outcome = dest.send(dest.render([sample_alert(config)]))
        outcome = outcome.clamped(config.settings.max_retry_wait)
    except Exception as exc:  # send-test explains in one line, never a traceback
        return False, f"not sent: unexpected error: {describe_crash(exc, dest.redact)}"
    finally:
        dest.close()
    if outcome.verdict == "ok":
        text = "test message delivered" if dest.posts else "test message printed to stdout"
        if outcome.remember and "migrated_chat_id" in outcome.remember:
            chat = outcome.remember["migrated_chat_id"]
            text += (f" (the group became a supergroup: set chat_id = {chat} in the config)")
        return True, text
    if outcome.verdict == "retry":
        return False, (f"not sent: rate limited, the service asks to wait "
                       f"{outcome.retry_after or 0:.0f}s; try again then")
    return False, f"not sent: {outcome.reason}"


def destination_status(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Per destination: pending/delivered/dead/skipped, failing since, last error, chat id."""
    counts = outbox.counts(conn)
    saved = get_values(conn, NS)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(counts) | set(saved)):
        info: dict[str, Any] = {"pending": 0, "delivered": 0, "dead": 0, "skipped": 0}
        info.update(counts.get(name, {}))
        state = _sane_saved(saved.get(name))
        since = state.get("failing_since")
        info["failing_since"] = _when(since) if since else None
        info["last_error"] = state.get("last_error")
        info["restarts"] = state.get("restarts", 0)
        if info["dead"]:
            info["last_dead_reason"] = outbox.last_dead(conn, name)
        if "migrated_chat_id" in state:
            info["migrated_chat_id"] = state["migrated_chat_id"]
        out[name] = info
    return out


def _sane_saved(saved: Any) -> dict[str, Any]:
    """The stored destination state, with what the sender relies on of the right type."""
    if not isinstance(saved, dict):
        return {}
    out = dict(saved)
    if finite(out.get("failing_since")) is None:
        out.pop("failing_since", None)
    if not isinstance(out.get("last_error"), str):
        out.pop("last_error", None)
    restarts = out.get("restarts")
    if not isinstance(restarts, int) or isinstance(restarts, bool) or restarts < 0:
        out.pop("restarts", None)
    return out


def _when(stamp: float) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(stamp))
    except (OverflowError, OSError, ValueError):  # a damaged state: say so, do not crash
        return f"(unreadable time {stamp!r})"
