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
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from logwatch.config import Config
from logwatch.durations import format_duration
from logwatch.models import Alert, Hit
from logwatch.policy.dedup import MAX_SAMPLE, Suppression, summary_alert
from logwatch.policy.render import (
    BUILTIN_VALUES,
    clock_time,
    hit_alert,
    template_values,
)
from logwatch.policy.resolve import Incident, quiet_over, resolved_alert
from logwatch.policy.storm import Storm, Storms
from logwatch.policy.tables import Counters, Table, encode, typed
from logwatch.policy.threshold import Thresholds, window_of, window_text
from logwatch.rules import Rule
from logwatch.state import get_values, put_texts, put_values
from logwatch.template import BUILTIN_FIELDS, Template

if TYPE_CHECKING:  # loaded only with [fleet]
    from logwatch.fleet.policy import FleetPolicy

log = logging.getLogger(__name__)

Clock = Callable[[], float]
#: kv namespaces: the policy's windows and counters, and what ``logwatch status`` shows
NS = "policy"
STATUS_NS = "policy-status"
#: live keys kept per rule and kind (threshold windows, dedup windows, incidents)
MAX_KEYS = 10_000


def _rule_of(kind: str, rest: str) -> str:
    """The rule id in a saved row's kv key after its kind: ``BIRTH/rule/key`` or, in the old
    form (lower-case kind), ``rule/key``."""
    if kind.islower():
        return rest.partition("/")[0]
    return rest.split("/", 2)[1]


@dataclass(frozen=True, slots=True)
class _Plan:
    """What feeding one rule's hits needs, worked out once: most hits never fire.

    A key template that names only the rule's own fields renders from ``hit.fields``
    directly, without building the whole :func:`template_values` mapping; one that
    names only values fixed for the rule (``{host}``) is rendered here, once.
    """

    rule: Rule
    #: dedup ``by``, else threshold ``by``: the rule's key (see ``Policy._group``)
    group: Template | None
    group_plain: bool
    #: the group is one of the rule's fields, "{ip}" (the usual key): its name
    group_field: str | None
    #: the group key of every hit, if it depends on none ("" without a group)
    group_key: str | None
    #: the rule has incidents (``resolve`` or ``quiet``)
    incidents: bool
    #: the threshold's ``by`` is the group template: its key is the group key
    same_key: bool
    by_plain: bool
    #: the title and message with the values fixed for the rule written in (its host, id,
    #: severity, threshold's ``within``)
    title: Template
    message: Template
    #: they name none of the values made per alert (``count``, ``line``...): rendered from
    #: the hit's fields, without the :func:`template_values` mapping
    from_fields: bool
    #: the firing-time values the title and message use (the others are not computed)
    first: bool
    last: bool

    @classmethod
    def of(cls, rule: Rule, hostname: str) -> _Plan:
        group = _group_template(rule)
        by = rule.threshold.by if rule.threshold is not None else None
        used = rule.title.fields | rule.message.fields
        plain = group is None or not group.fields & BUILTIN_VALUES
        # what template_values gives every hit of the rule alike (and over its fields)
        fixed = {"host": hostname, "rule": rule.id, "severity": rule.severity}
        key = "" if group is None else group.render(fixed) if group.fields <= fixed.keys() \
            else None
        # and _fire over them, alike for every alert of the rule
        within = format_duration(rule.threshold.within) if rule.threshold else ""
        title, message = rule.title.bind(fixed | {"within": within}), \
            rule.message.bind(fixed | {"within": within})
        return cls(rule, group, plain, _field_of(group) if plain else None, key,
                   rule.resolve is not None or rule.quiet is not None,
                   by is not None and by == group,
                   by is None or not by.fields & BUILTIN_VALUES,
                   title, message, not (title.fields | message.fields) & BUILTIN_FIELDS,
                   "first" in used, "last" in used)


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
        self._plans = {r.id: _Plan.of(r, config.settings.hostname) for r in config.rules}
        self._reset()

    def _reset(self) -> None:
        self._dirty: set[str] = set()
        self._status_written: dict[str, str] = {}
        #: the rows the last save wrote (their keys written again if its transaction rolls back)
        self._unconfirmed: list[tuple[str, str | None]] = []
        #: the hits the open dedup windows hold back, kept as they change (``logwatch status``
        #: shows it; summing the windows each second cost a pass over thousands of them)
        self._suppressed_open = 0
        self.windows: Table[list[float]] = Table("t", self.max_keys, window_text, window_of)
        self.suppressions: Table[Suppression] = Table(
            "d", self.max_keys, Suppression.saved_text, lambda d: typed(
                Suppression(**d), ("opener", "title", "source", "line"),
                ("until", "suppressed", "first", "last")))
        self.incidents: Table[Incident] = Table(
            "r", self.max_keys, Incident.saved_text, lambda d: typed(
                Incident(**d), ("opener", "title", "source"), ("last",)))
        self._table_of: dict[str, Table[Any]] = {t.kind: t for t in self._tables()}
        #: what :meth:`save` writes for a dirty kv key, by the key's first part
        self._forms: dict[str, Callable[[str], str | None]] = {
            "c": self._counters_text, "s": self._storm_text,
            **{t.kv_kind: t.saved_text for t in self._tables()}}
        self.thresholds = Thresholds(self.windows, self._below, self._evicted)
        self.storms = Storms(self.config, self._dirty)
        self.counters = Counters()
        #: a save left the status lines out (``save(status=False)``): they are out of date
        self.status_stale = False

    # -- feeding --------------------------------------------------------------

    def feed(self, hit: Hit) -> list[Alert]:
        """The alerts ``hit`` causes now; ``hit.line.time`` (if set) is its event time.

        Called for every hit, most of which change a window and return nothing: the
        usual steps are written out here rather than in calls of their own.
        """
        plan = self._plans.get(hit.rule)
        if plan is None:  # a hit from before a reload that removed its rule
            log.debug("policy: no rule %r any more; hit ignored", hit.rule)
            return []
        rule = plan.rule
        # event time, monotonic, so each rule's live keys stay ordered by time (oldest first)
        t = hit.line.time
        if t is None:
            t = self.clock()
        counters = self.counters
        if t < counters.latest:
            t = counters.latest
        else:
            counters.latest = t
        if hit.kind == "resolve":
            return self._resolve_hit(rule, hit, t)
        rule_id = rule.id
        counters.hits[rule_id] += 1
        self._dirty.add("c")
        out: list[Alert] = []
        if (group := plan.group_key) is None:  # else _group, with the usual case written out
            field = plan.group_field
            group = self._group(rule, hit, plan) if field is None else hit.fields.get(field) or ""
        if plan.incidents and (incident := self.incidents.use(rule_id, group)) is not None:
            incident.last = t
        if rule.fleet is not None and self._fleet_feed(rule, hit, t, out):
            return out
        # a held hit changes its window, whose place stays by the window's end (most keys
        # have none: looked up without a call)
        if rule.dedup is not None and group in self.suppressions.rows.get(rule_id, ()) and (
                held := self.suppressions.use(rule_id, group, newest=False)) is not None:
            if t <= held.until:
                held.count(hit.line.text, t)
                self._suppressed_open += 1
                return out
            out += self._close(rule_id, group, held, held.until)  # tick has not run yet
        th = rule.threshold
        if th is None:
            self._fire(rule, plan, hit, t, (1, t), group, out)
            return out
        key = group if plan.same_key else self._render_key(th.by, plan.by_plain, rule, hit)
        if (fired := self.thresholds.add(rule_id, th, key, t)) is not None:
            self._fire(rule, plan, hit, t, fired, group, out)
        return out

    def _fleet_feed(self, rule: Rule, hit: Hit, t: float, out: list[Alert]) -> bool:
        """Count ``hit`` in the fleet's threshold (its alerts into ``out``); whether that was
        all there is to do: the rule has no threshold of its own, only the fleet's count."""
        if rule.fleet is None or self.fleet is None:
            return False
        fleet_key = self._render_key(rule.fleet.by, False, rule, hit)
        alerts, fleet_fired = self.fleet.feed(rule, fleet_key, hit, t)
        out += [a for alert in alerts for a in self._route(alert, fleet_key, alert.title)]
        if rule.threshold is not None:
            return False
        if not fleet_fired:
            self._below(rule.id, 1)
        return True

    def _fire(self, rule: Rule, plan: _Plan, hit: Hit, t: float, fired: tuple[int, float],
              group: str, out: list[Alert]) -> None:
        """``hit`` makes the rule alert: open its windows, then send or hold the alert."""
        count, first = fired
        values = hit.fields if plan.from_fields else self._values(plan, hit, count, first, t)
        title = plan.title.render(values)
        if rule.dedup is not None:
            opened = Suppression(hit.line.key, title, hit.line.source, t + rule.dedup.window)
            for key, old in self.suppressions.put(rule.id, group, opened):
                self._evicted("dedup", rule.id)
                out += self._close(rule.id, key, old, t)
        if rule.resolve is not None or rule.quiet is not None:
            incident = Incident(hit.line.key, title, hit.line.source, t)
            for _ in self.incidents.put(rule.id, group, incident):
                self._evicted("incident", rule.id)
        direct = self.storms.split(rule.to, rule.severity, t, out)
        if len(direct) < len(rule.to):
            held = [dest for dest in rule.to if dest not in direct]
            self.storms.hold(held, rule.id, rule.severity, count, group, title)
        if direct:
            # rendered only when some destination takes it now (not during a storm)
            to = rule.to if len(direct) == len(rule.to) else tuple(direct)
            out.append(hit_alert(self.config, rule, hit, title, plan.message.render(values),
                                 now=t, count=count, to=to))

    def _values(self, plan: _Plan, hit: Hit, count: int, first: float,
                t: float) -> dict[str, object]:
        """What the title and message of an alert of ``count`` hits, ``first`` to ``t``, may
        name (those of :attr:`_Plan.from_fields` need the hit's fields only)."""
        values = template_values(self.config, plan.rule, hit, count=count)
        if plan.first:
            values["first"] = clock_time(first)
        if plan.last:
            values["last"] = clock_time(t)
        return values

    def _group(self, rule: Rule, hit: Hit, plan: _Plan) -> str:
        """The key dedup, incidents and digests use: dedup ``by``, else threshold ``by``."""
        if plan.group_key is not None:
            return plan.group_key
        if plan.group_field is not None:
            return hit.fields.get(plan.group_field) or ""
        if plan.group is None:
            return ""
        if plan.group_plain:  # of several fields ("{user} {ip}"; one would be group_field)
            return plan.group.render(hit.fields)
        return self._render_key(plan.group, False, rule, hit)

    def _render_key(self, template: Template, plain: bool, rule: Rule, hit: Hit) -> str:
        if not plain:
            return template.render(template_values(self.config, rule, hit))
        if (name := _field_of(template)) is not None:
            # "{ip}", the usual key: Template.render without the list and join
            return hit.fields.get(name) or ""
        return template.render(hit.fields)

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

    def _close(self, rule_id: str, key: str, held: Suppression, when: float) -> list[Alert]:
        """End a dedup window; a summary alert if it held anything back."""
        self.suppressions.pop(rule_id, key)
        self._suppressed_open -= held.suppressed
        rule = self.rules.get(rule_id)
        if rule is None or not (held.suppressed or self.fleet is not None):
            return []
        summary = summary_alert(self.config, rule, key, held, when)
        if not held.suppressed:  # fleet: the sender adds other hosts' hits, or skips it
            return [summary]     # (not in any rate)
        return self._route(summary, key, held.title)

    def _resolve_hit(self, rule: Rule, hit: Hit, t: float) -> list[Alert]:
        key = self._group(rule, hit, self._plans[rule.id])
        incident = self.incidents.get(rule.id, key)
        if incident is None:
            return []
        return self._resolve(rule, key, incident, t, f"resolved by: {hit.line.text[:MAX_SAMPLE]}")

    def _resolve(self, rule: Rule, key: str, incident: Incident, when: float,
                 why: str) -> list[Alert]:
        """Close the key's incident (and its dedup window first): a ``resolved`` alert."""
        self.incidents.pop(rule.id, key)
        out = []
        if (held := self.suppressions.get(rule.id, key)) is not None:
            out += self._close(rule.id, key, held, when)
        resolved = resolved_alert(self.config, rule, key, incident, when, why)
        return out + self._route(resolved, key, incident.title)

    # -- storms -----------------------------------------------------------------

    def _route(self, alert: Alert, group: str, label: str) -> list[Alert]:
        """``alert`` for the destinations not in a storm; the others hold it for their digest.

        ``label`` names the rule's key in a digest (the title of the alert that opened it).
        """
        out: list[Alert] = []
        direct = self.storms.split(alert.to, alert.severity, alert.time, out)
        if len(direct) < len(alert.to):
            held = [dest for dest in alert.to if dest not in direct]
            if alert.kind == "resolved":
                self.storms.hold_resolved(held)
            else:
                self.storms.hold(held, alert.rule, alert.severity, alert.count, group, label)
        if direct:
            out.append(alert if len(direct) == len(alert.to) else alert._replace(to=tuple(direct)))
        return out

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
            for key, incident in self.incidents.due(rule_id, quiet_over(rule.quiet, now)):
                out += self._resolve(rule, key, incident, incident.last + rule.quiet,
                                     f"No more since {clock_time(incident.last)} "
                                     f"(quiet for {format_duration(rule.quiet)}).")
        self.thresholds.expire(self.rules, now)
        return out + self.storms.tick(now)

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
        times += self.storms.next_due()
        return min(times, default=None)

    @property
    def pending_hits(self) -> int:
        """Hits still waiting in threshold windows (not yet alerted nor below threshold)."""
        return self.thresholds.pending_hits

    # -- persistence ----------------------------------------------------------------

    def load(self, conn: sqlite3.Connection) -> None:
        """Restore windows and counters from the state database."""
        self._reset()
        for kv_key, value in get_values(conn, NS).items():
            try:
                self._restore(kv_key, value)
            except (TypeError, ValueError, KeyError, IndexError):
                log.warning("policy: unreadable saved state %r dropped", kv_key)
                self._dirty.add(kv_key)
        self._suppressed_open = sum(held.suppressed for rows in self.suppressions.rows.values()
                                    for held in rows.values())
        self.windows.sort(lambda w: w[-1] if w else 0.0)
        self.suppressions.sort(lambda s: s.until)
        self.incidents.sort(lambda i: i.last)

    def _restore(self, kv_key: str, value: Any) -> None:
        """Load one saved row; one of a rule or destination that is gone is deleted."""
        kind, _, rest = kv_key.partition("/")
        table = self._table_of.get(kind.lower())
        if kind == "c":
            self.counters = Counters.load(value)
        elif kind == "s" and rest in self.config.destinations:
            self.storms.by_dest[rest] = Storm.load(value)
        elif table is not None and self._still_used(table.kind, _rule_of(kind, rest)):
            table.restore(kv_key, value)
            if kind == table.kind:  # the old form: rewritten under a birth, this one deleted
                self._dirty.add(kv_key)
        else:
            log.info("policy: dropping saved state %r (its rule or destination is gone)",
                     kv_key)
            self._dirty.add(kv_key)

    def _still_used(self, kind: str, rule_id: str) -> bool:
        """Whether saved state of ``kind`` still means something for the configured rule."""
        rule = self.rules.get(rule_id)
        if rule is None:
            return False
        # an open dedup window or threshold window is kept (and ends by its timer) even if
        # the rule lost its dedup/threshold: what it counted must still be reported
        return kind != "r" or rule.resolve is not None or rule.quiet is not None

    def _tables(self) -> tuple[Table[Any], ...]:
        return (self.windows, self.suppressions, self.incidents)

    def save(self, conn: sqlite3.Connection, *, status: bool = True) -> None:
        """Write what changed since the last save, in the caller's transaction.

        ``status=False`` leaves the lines ``logwatch status`` shows for a later save
        (:attr:`status_stale` says one is due): they cost a pass over every live key.
        """
        # the tables' rows are found from their changes; any other key (counters, storms,
        # rows to delete, a failed save's) from what is live
        text_of = self._text_of
        texts = {kv_key: text_of(kv_key) for kv_key in self._dirty}
        for table in self._tables():
            texts.update(table.saved_texts())
        rows = sorted(texts.items())  # in key order: the B-tree's pages one after another
        self._unconfirmed = rows
        self._dirty.clear()
        for table in self._tables():
            table.changed.clear()
        put_texts(conn, NS, rows)
        self.status_stale = not status
        if status:
            self.save_status(conn)

    def _text_of(self, kv_key: str) -> str | None:
        """The saved form of one dirty kv key, encoded (``None``: delete it, as an old-form
        row, rewritten under its birth, or a row of nothing live)."""
        form = self._forms.get(kv_key.partition("/")[0])
        return None if form is None else form(kv_key)

    def _counters_text(self, _: str) -> str:
        return encode(self.counters.dump())

    def _storm_text(self, kv_key: str) -> str | None:
        storm = self.storms.by_dest.get(kv_key.partition("/")[2])
        return storm.saved_text() if storm is not None else None

    @property
    def changed(self) -> int:
        """How many rows the next :meth:`save` writes (its cost)."""
        return len(self._dirty) + sum(len(table.changed) for table in self._tables())

    def save_failed(self) -> None:
        """The transaction of the last :meth:`save` rolled back (disk full): what it wrote is
        written again by the next (its rows' live state then, whatever it is)."""
        self._dirty.update(kv_key for kv_key, _ in self._unconfirmed)
        self._status_written.clear()

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
        return {
            "storms": self.storms.status(),
            "live_keys": {"threshold": len(self.windows), "dedup": len(self.suppressions),
                          "incidents": len(self.incidents)},
            "max_keys_per_rule": self.max_keys,
            "evictions": self.counters.evictions,
            "suppressed_open": self._suppressed_open,
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



def _field_of(template: Template | None) -> str | None:
    """The field a template is made of alone ("{ip}"), if it is."""
    if template is None or len(parts := template.parts) != 1 or parts[0][0]:
        return None
    return parts[0][1]


def _group_template(rule: Rule) -> Template | None:
    if rule.dedup is not None:
        return rule.dedup.by
    if rule.threshold is not None:
        return rule.threshold.by
    return None
