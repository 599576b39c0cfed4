"""Decide which hits become alerts: thresholds, dedup with accounting, storm digests, resolve.

A hit goes through these steps, each of which may hold it back but never drops it
without counting it:

1. **dedup** (``dedup = { by, for }``): while a key's window is open (it opened with
   an alert), its hits are *suppressed* and counted; when the window ends, a timer
   (:meth:`Policy.tick`, not the next line) emits one ``summary`` alert whose
   ``count`` is the number of hits held back.
2. **threshold** (``threshold = { count, within, by }``): hits wait in a sliding
   window per key; ``count`` of them within ``within`` seconds fire one alert whose
   ``count`` is the number of hits it stands for. Hits that leave the window
   without firing are counted as *below threshold*.
3. **storm** (``[logwatch] storm``), per destination: above ``rate`` alerts per
   ``per`` seconds, alerts (and summaries) for that destination are *held* and sent
   as one ``digest`` every ``digest_every`` seconds; ``count`` is the hits held.
4. **resolve** / **quiet**: a key that alerted gets one ``resolved`` follow-up when
   a line matches the rule's ``resolve`` pattern, or after ``quiet`` seconds
   without a hit.

So for every destination, hits = alert counts + summary counts + digest counts +
below threshold (once the open windows have ended): nothing is silently lost.

Alert ids are functions of the line key of the hit that fired and of the window
they close, so replaying the same lines from the same saved state after a crash
derives the same ids. State lives in the ``kv`` table (namespace ``policy``);
:meth:`Policy.save` writes only what changed, in the caller's transaction.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from logwatch.config import Config
from logwatch.durations import format_duration
from logwatch.models import SEVERITIES, Alert, Hit, Severity, alert_id
from logwatch.rules import Rule
from logwatch.state import get_values, put_values
from logwatch.template import Template

if TYPE_CHECKING:  # loaded only with [fleet]
    from logwatch.fleet.policy import FleetPolicy

log = logging.getLogger(__name__)

Clock = Callable[[], float]
#: kv namespaces: the policy's windows and counters, and what ``logwatch status`` shows
NS = "policy"
STATUS_NS = "policy-status"
#: live keys kept per rule and kind (threshold windows, dedup windows, incidents)
MAX_KEYS = 10_000
#: distinct (rule, key) lines a digest keeps; the rest is counted as "and M more"
MAX_DIGEST_ENTRIES = 1_000
#: the sample line kept with a dedup window (for the summary) is cut to this
MAX_SAMPLE = 500

V = TypeVar("V")


# ---------------------------------------------------------------------------
# Mutable state (not values that flow: these live inside the policy only)


def _flat(obj: Any) -> dict[str, Any]:
    """A slotted dataclass of plain values as a dict, without ``asdict``'s deep copies."""
    return {name: getattr(obj, name) for name in obj.__slots__}


@dataclass(slots=True)
class _Suppression:
    """An open dedup window: the alert that opened it and the hits held back since."""

    opener: str
    title: str
    source: str
    until: float
    suppressed: int = 0
    first: float = 0.0
    last: float = 0.0
    line: str = ""


@dataclass(slots=True)
class _Incident:
    """A key that alerted and will get a "resolved" follow-up (resolve / quiet)."""

    opener: str
    title: str
    source: str
    last: float


@dataclass(slots=True)
class _Held:
    """One line of a storm digest: alerts for one rule and key held back."""

    rule: str
    title: str
    severity: Severity
    hits: int = 0
    alerts: int = 0
    key: str = ""

    def describe(self) -> str:
        key = f" [{self.key}]" if self.key and self.key not in self.title else ""
        return f"- {self.rule}: {self.title}{key}: {_plural(self.hits, 'hit')}"


@dataclass(slots=True)
class _Storm:
    """Storm state of one destination: recent alert rate and, during a storm, the digest."""

    #: ``[second, alerts]`` buckets over the last ``per`` seconds
    rate: deque[list[int]] = field(default_factory=deque)
    since: float | None = None
    due: float = 0.0
    seq: int = 0
    held: dict[str, _Held] = field(default_factory=dict)
    #: what did not fit in ``held``: hits and alerts; keys resolved during the storm
    other_hits: int = 0
    other_alerts: int = 0
    resolved: int = 0
    period_start: float = 0.0

    def add(self, t: float) -> None:
        second = int(t)
        if self.rate and self.rate[-1][0] >= second:
            self.rate[-1][1] += 1  # an older event time than the last: same bucket
        else:
            self.rate.append([second, 1])

    def count(self, now: float, per: float) -> int:
        """Alerts in the last ``per`` seconds (dropping older buckets)."""
        while self.rate and self.rate[0][0] <= now - per:
            self.rate.popleft()
        return sum(n for _, n in self.rate)

    @property
    def held_hits(self) -> int:
        return sum(h.hits for h in self.held.values()) + self.other_hits

    def dump(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in ("since", "due", "seq", "other_hits",
                                               "other_alerts", "resolved", "period_start")}
        data["rate"] = list(self.rate)
        data["held"] = {k: _flat(v) for k, v in self.held.items()}
        return data

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> _Storm:
        held = {k: _Held(**v) for k, v in data.get("held", {}).items()}
        rest = {k: v for k, v in data.items() if k not in ("rate", "held")}
        return cls(rate=deque(data.get("rate", [])), held=held, **rest)


@dataclass(slots=True)
class _Counters:
    """Totals kept across restarts; ``latest`` keeps event time monotonic."""

    latest: float = 0.0
    hits: Counter[str] = field(default_factory=Counter)
    below: Counter[str] = field(default_factory=Counter)
    evictions: int = 0

    def dump(self) -> dict[str, Any]:
        return {"latest": self.latest, "hits": dict(self.hits), "below": dict(self.below),
                "evictions": self.evictions}

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> _Counters:
        return cls(float(data.get("latest", 0.0)), Counter(data.get("hits", {})),
                   Counter(data.get("below", {})), int(data.get("evictions", 0)))


class _Table(Generic[V]):
    """Live keys of one kind, per rule, least recently touched first, capped per rule.

    Every change marks the row's kv key dirty, so :meth:`Policy.save` writes only that.
    """

    def __init__(self, kind: str, cap: int, dirty: set[str],
                 dump: Callable[[V], Any], load: Callable[[Any], V]) -> None:
        self.kind = kind
        self.cap = cap
        self.dirty = dirty
        self.dump = dump
        self.load = load
        self.rows: dict[str, OrderedDict[str, V]] = {}

    def kv_key(self, rule: str, key: str) -> str:
        return f"{self.kind}/{rule}/{key}"

    def get(self, rule: str, key: str) -> V | None:
        rows = self.rows.get(rule)
        return None if rows is None else rows.get(key)

    def put(self, rule: str, key: str, value: V) -> list[tuple[str, V]]:
        """Add or replace ``key`` as the newest; return the entries evicted to stay capped."""
        rows = self.rows.setdefault(rule, OrderedDict())
        rows[key] = value
        rows.move_to_end(key)
        self.dirty.add(self.kv_key(rule, key))
        evicted = []
        while len(rows) > self.cap:
            old_key, old = rows.popitem(last=False)
            self.dirty.add(self.kv_key(rule, old_key))
            evicted.append((old_key, old))
        return evicted

    def touch(self, rule: str, key: str, *, newest: bool = True) -> None:
        """``key`` changed (and, if ``newest``, was just used)."""
        if newest:
            self.rows[rule].move_to_end(key)
        self.dirty.add(self.kv_key(rule, key))

    def pop(self, rule: str, key: str) -> V | None:
        self.dirty.add(self.kv_key(rule, key))
        rows = self.rows.get(rule)
        return None if rows is None else rows.pop(key, None)

    def due(self, rule: str, is_due: Callable[[V], bool]) -> list[tuple[str, V]]:
        """The oldest entries of ``rule`` for which ``is_due`` holds, up to the first that not."""
        out = []
        for key, value in self.rows.get(rule, {}).items():
            if not is_due(value):
                break
            out.append((key, value))
        return out

    def first(self, rule: str) -> V | None:
        rows = self.rows.get(rule)
        return next(iter(rows.values())) if rows else None

    def value_of(self, rule: str, key: str) -> Any:
        value = self.get(rule, key)
        return None if value is None else self.dump(value)

    def sort(self, key: Callable[[V], float]) -> None:
        for rule, rows in self.rows.items():
            self.rows[rule] = OrderedDict(sorted(rows.items(), key=lambda kv: key(kv[1])))

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.rows.values())

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.rows))


# ---------------------------------------------------------------------------
# The policy


_RANK: dict[str, int] = {severity: rank for rank, severity in enumerate(SEVERITIES)}
#: what :func:`template_values` sets besides the rule's fields (it overrides fields so named)
_BUILTIN_VALUES = frozenset({"host", "rule", "source", "line", "severity"})


@dataclass(frozen=True, slots=True)
class _Plan:
    """What feeding one rule's hits needs, worked out once: most hits never fire.

    A key template that names only the rule's own fields renders from ``hit.fields``
    directly, without building the whole :func:`template_values` mapping.
    """

    #: dedup ``by``, else threshold ``by``: the rule's key (see ``Policy._group``)
    group: Template | None
    group_plain: bool
    #: the threshold's ``by`` is the group template: its key is the group key
    same_key: bool
    by_plain: bool
    #: the firing-time values the title and message use (the others are not computed)
    within: str | None
    first: bool
    last: bool

    @classmethod
    def of(cls, rule: Rule) -> _Plan:
        group = _group_template(rule)
        by = rule.threshold.by if rule.threshold is not None else None
        used = rule.title.fields | rule.message.fields
        within = format_duration(rule.threshold.within) if rule.threshold else ""
        return cls(group, group is None or not group.fields & _BUILTIN_VALUES,
                   by is not None and by == group,
                   by is None or not by.fields & _BUILTIN_VALUES,
                   within if "within" in used else None, "first" in used, "last" in used)


class Policy:
    """Turns hits into alerts for one configuration; see the module docstring."""

    def __init__(self, config: Config, clock: Clock = time.time, *,
                 max_keys: int = MAX_KEYS, fleet: FleetPolicy | None = None) -> None:
        self.config = config
        #: fleet thresholds, and dedup summaries even when nothing was held back here
        #: (the fleet's owner of a claim may have other hosts' hits to report)
        self.fleet = fleet
        self.clock = clock
        self.max_keys = max_keys
        self.rules: dict[str, Rule] = {r.id: r for r in config.rules}
        self._plans = {r.id: _Plan.of(r) for r in config.rules}
        self._min_rank = {name: _RANK[d.min_severity] for name, d in config.destinations.items()}
        self._reset()

    def _reset(self) -> None:
        self._dirty: set[str] = set()
        self._status_written: dict[str, str] = {}
        self.windows: _Table[deque[float]] = _Table("t", self.max_keys, self._dirty, list, deque)
        self.suppressions: _Table[_Suppression] = _Table(
            "d", self.max_keys, self._dirty, _flat, lambda d: _Suppression(**d))
        self.incidents: _Table[_Incident] = _Table(
            "r", self.max_keys, self._dirty, _flat, lambda d: _Incident(**d))
        self._table_of: dict[str, _Table[Any]] = {t.kind: t for t in self._tables()}
        self.storms: dict[str, _Storm] = {}
        self.counters = _Counters()
        #: a save left the status lines out (``save(status=False)``): they are out of date
        self.status_stale = False

    # -- feeding --------------------------------------------------------------

    def feed(self, hit: Hit) -> list[Alert]:
        """The alerts ``hit`` causes now; ``hit.line.time`` (if set) is its event time."""
        rule = self.rules.get(hit.rule)
        if rule is None:  # a hit from before a reload that removed its rule
            log.debug("policy: no rule %r any more; hit ignored", hit.rule)
            return []
        t = self._event_time(hit)
        if hit.kind == "resolve":
            return self._resolve_hit(rule, hit, t)
        self.counters.hits[rule.id] += 1
        self._dirty.add("c")
        out: list[Alert] = []
        plan = self._plans[rule.id]
        group = self._group(rule, hit, plan)
        if rule.resolve is not None or rule.quiet is not None:  # else it has no incidents
            self._touch_incident(rule, group, t)
        if rule.fleet is not None and self.fleet is not None:
            fleet_key = self._render_key(rule.fleet.by, False, rule, hit)
            alerts, fleet_fired = self.fleet.feed(rule, fleet_key, hit, t)
            out += [a for alert in alerts for a in self._route(alert, fleet_key, alert.title)]
            if rule.threshold is None:  # only the fleet's count fires this rule
                if not fleet_fired:
                    self._below(rule.id, 1)
                return out
        held = self.suppressions.get(rule.id, group) if rule.dedup is not None else None
        if held is not None:
            if t <= held.until:
                self._suppress(rule.id, group, held, hit, t)
                return out
            out += self._close(rule.id, group, held, held.until)  # tick has not run yet
        fired = self._threshold(rule, hit, t, group if plan.same_key else None)
        if fired is None:
            return out
        self._fire(rule, plan, hit, t, fired, group, out)
        return out

    def _fire(self, rule: Rule, plan: _Plan, hit: Hit, t: float, fired: tuple[int, float],
              group: str, out: list[Alert]) -> None:
        """``hit`` makes the rule alert: open its windows, then send or hold the alert."""
        count, first = fired
        values = template_values(self.config, rule, hit, count=count)
        if plan.within is not None:
            values["within"] = plan.within
        if plan.first:
            values["first"] = clock_time(first)
        if plan.last:
            values["last"] = clock_time(t)
        title = rule.title.render(values)
        if rule.dedup is not None:
            opened = _Suppression(hit.line.key, title, hit.line.source, t + rule.dedup.window)
            for key, old in self.suppressions.put(rule.id, group, opened):
                self._evicted("dedup", rule.id)
                out += self._close(rule.id, key, old, t)
        if rule.resolve is not None or rule.quiet is not None:
            incident = _Incident(hit.line.key, title, hit.line.source, t)
            for _ in self.incidents.put(rule.id, group, incident):
                self._evicted("incident", rule.id)
        direct = self._split(rule.to, rule.severity, t, out)
        if len(direct) < len(rule.to):
            held = [dest for dest in rule.to if dest not in direct]
            self._hold(held, rule.id, rule.severity, count, group, title)
        if direct:
            # rendered only when some destination takes it now (not during a storm)
            out.append(_alert(self.config, rule, hit, values, title, now=t, count=count,
                              to=tuple(direct)))

    def _event_time(self, hit: Hit) -> float:
        # monotonic, so each rule's live keys stay ordered by time (oldest first)
        t = hit.line.time
        if t is None:
            t = self.clock()
        counters = self.counters
        if t < counters.latest:
            return counters.latest
        counters.latest = t
        return t

    def _group(self, rule: Rule, hit: Hit, plan: _Plan) -> str:
        """The key dedup, incidents and digests use: dedup ``by``, else threshold ``by``."""
        if plan.group is None:
            return ""
        return self._render_key(plan.group, plan.group_plain, rule, hit)

    def _render_key(self, template: Template, plain: bool, rule: Rule, hit: Hit) -> str:
        if not plain:
            return template.render(template_values(self.config, rule, hit))
        if len(parts := template.parts) == 1 and not parts[0][0] and parts[0][1] is not None:
            # "{ip}", the usual key: Template.render without the list and join
            value = hit.fields.get(parts[0][1])
            return "" if value is None else str(value)
        return template.render(hit.fields)

    def _suppress(self, rule_id: str, key: str, held: _Suppression, hit: Hit, t: float) -> None:
        if not held.suppressed:
            held.first = t
        held.suppressed += 1
        held.last = t
        held.line = hit.line.text[:MAX_SAMPLE]
        self.suppressions.touch(rule_id, key, newest=False)  # order stays by window end

    def _threshold(self, rule: Rule, hit: Hit, t: float,
                   key: str | None) -> tuple[int, float] | None:
        """``(hits, first hit time)`` if the hit completes the threshold, else ``None``.

        ``key`` is the threshold's key if the caller has it already.
        """
        th = rule.threshold
        if th is None:
            return 1, t
        if key is None:
            key = self._render_key(th.by, self._plans[rule.id].by_plain, rule, hit)
        window = self.windows.get(rule.id, key)
        if window is None:
            window = deque()
            for _, old in self.windows.put(rule.id, key, window):
                self._evicted("threshold", rule.id)
                self._below(rule.id, len(old))
        # inclusive: hits exactly `within` apart are within it
        while window and window[0] < t - th.within:
            window.popleft()
            self._below(rule.id, 1)
        window.append(t)
        if len(window) < th.count:
            self.windows.touch(rule.id, key)
            return None
        self.windows.pop(rule.id, key)  # these hits are now in the alert's count
        return len(window), window[0]

    def _below(self, rule_id: str, hits: int) -> None:
        if hits:
            self.counters.below[rule_id] += hits
            self._dirty.add("c")

    def _evicted(self, what: str, rule_id: str) -> None:
        self.counters.evictions += 1
        self._dirty.add("c")
        n = self.counters.evictions
        if str(n).rstrip("0") == "1":  # the 1st, 10th, 100th...: loud, but not a flood
            log.warning("policy: over %d live %s keys for rule %s: evicting the oldest "
                        "(%d evictions so far)", self.max_keys, what, rule_id, n)

    # -- dedup summaries, resolve -------------------------------------------------

    def _close(self, rule_id: str, key: str, held: _Suppression, when: float) -> list[Alert]:
        """End a dedup window; a summary alert if it held anything back."""
        self.suppressions.pop(rule_id, key)
        rule = self.rules.get(rule_id)
        if rule is None or not (held.suppressed or self.fleet is not None):
            return []
        n = held.suppressed
        first, last = clock_span(held.first, held.last)
        between = f"at {first}" if first == last else f"between {first} and {last}"
        summary = Alert(
            id=alert_id("summary", rule_id, key, held.opener),
            kind="summary", rule=rule_id, severity=rule.severity,
            title=f"{n} more '{held.title}' suppressed",
            message=f"{n} more '{held.title}' suppressed {between}",
            source=held.source, host=self.config.settings.hostname, time=when,
            line=held.line, fields={"key": key} if key else {}, count=n, to=rule.to,
        )
        if not n:  # fleet: the sender adds other hosts' hits, or skips it; not in any rate
            return [summary]
        return self._route(summary, key, held.title)

    def _touch_incident(self, rule: Rule, key: str, t: float) -> None:
        if (incident := self.incidents.get(rule.id, key)) is not None:
            incident.last = t
            self.incidents.touch(rule.id, key)

    def _resolve_hit(self, rule: Rule, hit: Hit, t: float) -> list[Alert]:
        key = self._group(rule, hit, self._plans[rule.id])
        incident = self.incidents.get(rule.id, key)
        if incident is None:
            return []
        return self._resolve(rule, key, incident, t, f"resolved by: {hit.line.text[:MAX_SAMPLE]}")

    def _resolve(self, rule: Rule, key: str, incident: _Incident, when: float,
                 why: str) -> list[Alert]:
        """Close the key's incident (and its dedup window first): a ``resolved`` alert."""
        self.incidents.pop(rule.id, key)
        out = []
        if (held := self.suppressions.get(rule.id, key)) is not None:
            out += self._close(rule.id, key, held, when)
        resolved = Alert(
            id=alert_id("resolved", rule.id, key, incident.opener),
            # the rule's severity, so it reaches every channel the alert reached
            kind="resolved", rule=rule.id, severity=rule.severity,
            title=f"Resolved: {incident.title}", message=why,
            source=incident.source, host=self.config.settings.hostname, time=when,
            fields={"key": key} if key else {}, count=0, to=rule.to,
        )
        return out + self._route(resolved, key, incident.title)

    # -- storms -----------------------------------------------------------------

    def _route(self, alert: Alert, group: str, label: str) -> list[Alert]:
        """``alert`` for the destinations not in a storm; the others hold it for their digest.

        ``label`` names the rule's key in a digest (the title of the alert that opened it).
        """
        out: list[Alert] = []
        direct = self._split(alert.to, alert.severity, alert.time, out)
        if len(direct) < len(alert.to):
            held = [dest for dest in alert.to if dest not in direct]
            if alert.kind == "resolved":
                for dest in held:
                    self.storms[dest].resolved += 1
            else:
                self._hold(held, alert.rule, alert.severity, alert.count, group, label)
        if direct:
            out.append(alert if len(direct) == len(alert.to) else replace(alert, to=tuple(direct)))
        return out

    def _split(self, to: tuple[str, ...], severity: Severity, t: float,
               out: list[Alert]) -> list[str]:
        """The destinations an alert goes to now; the others are storming and hold it.

        Counts the alert in each destination's rate (a storm that starts is announced
        in ``out``).
        """
        direct = []
        for dest in to:
            if self._below_min_severity(dest, severity):
                direct.append(dest)  # its sender skips it: not a message, not in the rate
            elif not self._storming(dest, t, out):
                direct.append(dest)
        return direct

    def _below_min_severity(self, dest: str, severity: Severity) -> bool:
        # an unknown destination has no minimum (rank 0)
        return _RANK[severity] < self._min_rank.get(dest, 0)

    def _storming(self, dest: str, t: float, out: list[Alert]) -> bool:
        """Count one alert for ``dest``; start its storm (announced in ``out``) if over rate."""
        cfg = self.config.settings.storm
        storm = self.storms.get(dest)
        if storm is None:
            storm = self.storms[dest] = _Storm()
        storm.add(t)
        self._dirty.add("s/" + dest)
        if storm.since is None and storm.count(t, cfg.per) > cfg.rate:
            storm.since = storm.period_start = t
            storm.due = t + cfg.digest_every
            storm.seq = 0
            out.append(self._notice(dest, storm, "in progress", t,
                                    f"More than {cfg.rate} alerts within {format_duration(cfg.per)}"
                                    f" for {dest}: one digest every "
                                    f"{format_duration(cfg.digest_every)} until it calms down."))
        return storm.since is not None

    def _hold(self, dests: list[str], rule: str, severity: Severity, count: int, group: str,
              label: str) -> None:
        """Each storming destination in ``dests`` holds an alert of ``count`` hits."""
        # a rule without a `by` key: one digest line per distinct title
        key = f"{rule}\x1f{group}" if group else f"{rule}\x1f\x1e{label}"
        for dest in dests:
            storm = self.storms[dest]
            held = storm.held.get(key)
            if held is None and len(storm.held) < MAX_DIGEST_ENTRIES:
                held = storm.held[key] = _Held(rule, label, severity, key=group)
            if held is None:
                storm.other_hits += count
                storm.other_alerts += 1
            else:
                held.hits += count
                held.alerts += 1

    def _digest(self, dest: str, storm: _Storm, now: float) -> list[Alert]:
        """The digest due for ``dest``; the storm ends if the rate fell back to ``rate``."""
        cfg = self.config.settings.storm
        when = storm.due
        over = storm.count(now, cfg.per) <= cfg.rate
        out = []
        if storm.held or storm.other_hits or storm.other_alerts or storm.resolved:
            out.append(self._digest_alert(dest, storm, when, over))
        elif over:
            out.append(self._notice(dest, storm, "over", when, "Alerts are sent one by one again."))
        storm.seq += 1
        storm.held = {}
        storm.other_hits = storm.other_alerts = storm.resolved = 0
        storm.period_start = when
        if over:
            storm.since = None
        else:
            # a long pause between ticks (suspend) sends one digest, not one per missed period
            missed = max(0, int((now - storm.due) // cfg.digest_every))
            storm.due += (missed + 1) * cfg.digest_every
        self._dirty.add(f"s/{dest}")
        return out

    def _digest_alert(self, dest: str, storm: _Storm, when: float, over: bool) -> Alert:
        cfg = self.config.settings.storm
        host = self.config.settings.hostname
        held = sorted(storm.held.values(), key=lambda h: (-h.hits, -h.alerts, h.rule, h.title))
        shown, rest = held[: cfg.top], held[cfg.top:]
        alerts = sum(h.alerts for h in held) + storm.other_alerts
        hits = storm.held_hits
        start, end = clock_span(storm.period_start, when)
        lines = [f"{alerts} alerts ({hits} hits) held back for {dest} between {start} and {end}:"]
        lines += [h.describe() for h in shown]
        more_alerts = sum(h.alerts for h in rest) + storm.other_alerts
        if more_alerts:
            more_hits = sum(h.hits for h in rest) + storm.other_hits
            beyond = "+" if storm.other_alerts else ""  # keys past MAX_DIGEST_ENTRIES
            lines.append(f"and {len(rest)}{beyond} more ({_plural(more_alerts, 'alert')}, "
                         f"{_plural(more_hits, 'hit')})")
        if storm.resolved:
            lines.append(f"{storm.resolved} resolved")
        if over:
            lines.append("Storm over: alerts are sent one by one again.")
        state = "storm over" if over else "storm in progress"
        severity: Severity = max((h.severity for h in held), key=SEVERITIES.index,
                                 default="warning")
        return Alert(
            id=alert_id("digest", dest, repr(storm.since), str(storm.seq)),
            kind="digest", rule="logwatch", severity=severity,
            title=f"Alert digest for {host} ({state}): {alerts} alerts, {_plural(hits, 'hit')}",
            message="\n".join(lines), source="logwatch", host=host, time=when,
            count=hits, to=(dest,),
        )

    def _notice(self, dest: str, storm: _Storm, state: str, when: float, message: str) -> Alert:
        host = self.config.settings.hostname
        return Alert(
            id=alert_id("storm", dest, state, repr(storm.since)),
            kind="system", rule="logwatch",
            severity="warning",  # both notices reach a channel that takes warnings
            title=f"Alert storm on {host}: {state}", message=message, source="logwatch",
            host=host, time=when, count=0, to=(dest,),
        )

    # -- timers -------------------------------------------------------------------

    def tick(self, now: float | None = None) -> list[Alert]:
        """The alerts timers cause at ``now``: summaries, resolved (quiet), digests."""
        now = self.clock() if now is None else now
        out: list[Alert] = []
        for rule_id in self.suppressions:
            for key, held in self.suppressions.due(rule_id, lambda s: s.until <= now):
                out += self._close(rule_id, key, held, held.until)
        for rule_id in self.incidents:
            rule = self.rules.get(rule_id)
            if rule is None or rule.quiet is None:
                continue
            for key, incident in self.incidents.due(rule_id, _quiet_over(rule.quiet, now)):
                out += self._resolve(rule, key, incident, incident.last + rule.quiet,
                                     f"No more since {clock_time(incident.last)} "
                                     f"(quiet for {format_duration(rule.quiet)}).")
        self._expire_windows(now)
        for dest, storm in list(self.storms.items()):
            if storm.since is not None and storm.due <= now:
                out += self._digest(dest, storm, now)
        return out

    def _expire_windows(self, now: float) -> None:
        for rule_id in self.windows:
            rule = self.rules.get(rule_id)
            within = rule.threshold.within if rule is not None and rule.threshold else 0.0
            for key, window in self.windows.due(rule_id, _window_over(within, now)):
                self.windows.pop(rule_id, key)
                self._below(rule_id, len(window))

    def next_due(self) -> float | None:
        """When the next timer falls due (a summary, a quiet resolve, a digest), if any."""
        times = []
        for rule_id in self.suppressions:
            if (held := self.suppressions.first(rule_id)) is not None:
                times.append(held.until)
        for rule_id in self.incidents:
            rule = self.rules.get(rule_id)
            incident = self.incidents.first(rule_id)
            if rule is not None and rule.quiet is not None and incident is not None:
                times.append(incident.last + rule.quiet)
        times += [s.due for s in self.storms.values() if s.since is not None]
        return min(times, default=None)

    @property
    def pending_hits(self) -> int:
        """Hits still waiting in threshold windows (not yet alerted nor below threshold)."""
        return sum(len(w) for rows in self.windows.rows.values() for w in rows.values())

    # -- persistence ----------------------------------------------------------------

    def load(self, conn: sqlite3.Connection) -> None:
        """Restore windows and counters from the state database."""
        self._reset()
        tables: dict[str, _Table[Any]] = {t.kind: t for t in self._tables()}
        for kv_key, value in get_values(conn, NS).items():
            kind, _, rest = kv_key.partition("/")
            try:
                if kind == "c":
                    self.counters = _Counters.load(value)
                elif kind == "s" and rest in self.config.destinations:
                    self.storms[rest] = _Storm.load(value)
                elif kind in tables and self._still_used(kind, rest.partition("/")[0]):
                    rule_id = rest.partition("/")[0]
                    table = tables[kind]
                    key = rest.partition("/")[2]
                    table.rows.setdefault(rule_id, OrderedDict())[key] = table.load(value)
                else:
                    log.info("policy: dropping saved state %r (its rule or destination is gone)",
                             kv_key)
                    self._dirty.add(kv_key)
            except (TypeError, ValueError, KeyError):
                log.warning("policy: unreadable saved state %r dropped", kv_key)
                self._dirty.add(kv_key)
        self.windows.sort(lambda w: w[-1] if w else 0.0)
        self.suppressions.sort(lambda s: s.until)
        self.incidents.sort(lambda i: i.last)

    def _still_used(self, kind: str, rule_id: str) -> bool:
        """Whether saved state of ``kind`` still means something for the configured rule."""
        rule = self.rules.get(rule_id)
        if rule is None:
            return False
        # an open dedup window or threshold window is kept (and ends by its timer) even if
        # the rule lost its dedup/threshold: what it counted must still be reported
        return kind != "r" or rule.resolve is not None or rule.quiet is not None

    def _tables(self) -> tuple[_Table[Any], ...]:
        return (self.windows, self.suppressions, self.incidents)

    def save(self, conn: sqlite3.Connection, *, status: bool = True) -> None:
        """Write what changed since the last save, in the caller's transaction.

        ``status=False`` leaves the lines ``logwatch status`` shows for a later save
        (:attr:`status_stale` says one is due): they cost a pass over every live key.
        """
        value_of = self._value_of
        put_values(conn, NS, [(kv_key, value_of(kv_key)) for kv_key in sorted(self._dirty)])
        self._dirty.clear()
        self.status_stale = not status
        if status:
            self.save_status(conn)

    def _value_of(self, kv_key: str) -> Any:
        """The saved form of one dirty kv key (``None``: delete it)."""
        kind, _, rest = kv_key.partition("/")
        if kind == "c":
            return self.counters.dump()
        if kind == "s":
            storm = self.storms.get(rest)
            return storm.dump() if storm is not None else None
        table = self._table_of.get(kind)
        if table is None:
            return None
        rule_id, _, key = rest.partition("/")
        rows = table.rows.get(rule_id)
        value = None if rows is None else rows.get(key)
        return None if value is None else table.dump(value)

    def save_status(self, conn: sqlite3.Connection) -> None:
        """Write the ``logwatch status`` lines that changed, in the caller's transaction."""
        lines = self._status_lines()
        changed = [(k, text) for k, text in lines.items() if self._status_written.get(k) != text]
        put_values(conn, STATUS_NS, changed)
        self._status_written.update(changed)
        self.status_stale = False

    # -- status ---------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """For ``logwatch status``: storms per destination, live keys, evictions, totals."""
        storms = {
            dest: {"since": s.since, "held_alerts": sum(h.alerts for h in s.held.values())
                   + s.other_alerts, "held_hits": s.held_hits, "next_digest": s.due}
            for dest, s in sorted(self.storms.items()) if s.since is not None
        }
        return {
            "storms": storms,
            "live_keys": {"threshold": len(self.windows), "dedup": len(self.suppressions),
                          "incidents": len(self.incidents)},
            "max_keys_per_rule": self.max_keys,
            "evictions": self.counters.evictions,
            "suppressed_open": sum(s.suppressed for rows in self.suppressions.rows.values()
                                   for s in rows.values()),
            "hits": sum(self.counters.hits.values()),
            "below_threshold": sum(self.counters.below.values()),
        }

    def _status_lines(self) -> dict[str, str]:
        info = self.status()
        storms = ", ".join(f"{dest} since {clock_time(s['since'])} ({s['held_alerts']} alerts "
                           f"held)" for dest, s in info["storms"].items())
        live = info["live_keys"]
        return {
            "storms": storms or "none",
            "live keys": f"{live['threshold']} threshold, {live['dedup']} dedup "
                         f"({info['suppressed_open']} hits suppressed so far), "
                         f"{live['incidents']} awaiting resolve; cap {self.max_keys} per rule, "
                         f"{info['evictions']} evicted",
        }


# ---------------------------------------------------------------------------
# Rendering


def _quiet_over(quiet: float, now: float) -> Callable[[_Incident], bool]:
    return lambda incident: incident.last + quiet <= now


def _window_over(within: float, now: float) -> Callable[[deque[float]], bool]:
    # strict, as in Policy._threshold: a hit exactly `within` ago still counts
    return lambda window: window[-1] < now - within


def _group_template(rule: Rule) -> Template | None:
    if rule.dedup is not None:
        return rule.dedup.by
    if rule.threshold is not None:
        return rule.threshold.by
    return None


def template_values(config: Config, rule: Rule, hit: Hit, **extra: object) -> dict[str, object]:
    """What ``{name}`` may refer to in a rule's templates for ``hit``."""
    return {
        **hit.fields,
        "host": config.settings.hostname,
        "rule": rule.id,
        "source": hit.line.source,
        "line": hit.line.text,
        "severity": rule.severity,
        **extra,
    }


def render_alert(
    config: Config, rule: Rule, hit: Hit, *, now: float, count: int = 1,
    extra: Mapping[str, str] | None = None,
) -> Alert:
    """The alert for ``hit`` with the rule's title and message filled in."""
    values = template_values(config, rule, hit, count=count, **(extra or {}))
    return _alert(config, rule, hit, values, rule.title.render(values), now=now, count=count,
                  to=rule.to)


def _alert(config: Config, rule: Rule, hit: Hit, values: Mapping[str, object], title: str, *,
           now: float, count: int, to: tuple[str, ...]) -> Alert:
    return Alert(
        id=alert_id("alert", rule.id, hit.line.key),
        kind="alert",
        rule=rule.id,
        severity=rule.severity,
        title=title,
        message=rule.message.render(values),
        source=hit.line.source,
        host=config.settings.hostname,
        time=now,
        line=hit.line.text,
        fields=dict(hit.fields),
        count=count,
        to=to,
    )


def clock_time(t: float) -> str:
    """``14:02:07``, local time, as a sysadmin reads the logs."""
    return time.strftime("%H:%M:%S", time.localtime(t))


def clock_span(first: float, last: float) -> tuple[str, str]:
    """Both ends of a span, as short as reads well: minutes for long spans, dates if needed."""
    fmt = "%H:%M" if last - first >= 600 else "%H:%M:%S"
    a, b = time.localtime(first), time.localtime(last)
    if (a.tm_year, a.tm_yday) != (b.tm_year, b.tm_yday):
        fmt = "%b %d " + fmt
    return time.strftime(fmt, a), time.strftime(fmt, b)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
