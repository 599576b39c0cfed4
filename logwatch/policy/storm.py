"""Storms, per destination: above a rate, alerts are held and sent as one digest per interval.

``[logwatch] storm = { rate, per, digest_every, top }``: above ``rate`` alerts per
``per`` seconds, alerts (and summaries) for a destination are *held* and sent as
one ``digest`` every ``digest_every`` seconds, whose ``count`` is the hits held;
"storm in progress" and "storm over" notices bracket it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from logwatch.config import Config
from logwatch.durations import format_duration
from logwatch.models import SEVERITIES, Alert, Severity, alert_id
from logwatch.policy.render import clock_span, plural
from logwatch.policy.tables import encode, flat

#: distinct (rule, key) lines a digest keeps; the rest is counted as "and M more"
MAX_DIGEST_ENTRIES = 1_000
_RANK: dict[str, int] = {severity: rank for rank, severity in enumerate(SEVERITIES)}


@dataclass(slots=True)
class Held:
    """One line of a storm digest: alerts for one rule and key held back."""

    rule: str
    title: str
    severity: Severity
    hits: int = 0
    alerts: int = 0
    key: str = ""

    def describe(self) -> str:
        key = f" [{self.key}]" if self.key and self.key not in self.title else ""
        return f"- {self.rule}: {self.title}{key}: {plural(self.hits, 'hit')}"


@dataclass(slots=True)
class Storm:
    """Storm state of one destination: recent alert rate and, during a storm, the digest."""

    #: ``[second, alerts]`` buckets over the last ``per`` seconds
    rate: deque[list[int]] = field(default_factory=deque)
    since: float | None = None
    due: float = 0.0
    seq: int = 0
    held: dict[str, Held] = field(default_factory=dict)
    #: what did not fit in ``held``: hits and alerts; keys resolved during the storm
    other_hits: int = 0
    other_alerts: int = 0
    resolved: int = 0
    period_start: float = 0.0
    #: the sum of ``rate``'s counts, kept as they change (not saved: worked out at start)
    total: int = field(default=0, init=False)
    #: each bucket of ``rate`` as JSON: the saved row is rewritten at each commit that
    #: counted an alert, and encoding a minute of buckets again each time cost more than
    #: the rest of the policy's rows (kept as they change, not saved). The last one, which
    #: each alert counts in, is made again only when a newer one starts and at a save.
    rate_json: deque[str] = field(default_factory=deque, init=False)
    #: each entry of ``held`` as its saved text, with the counts it was made at: a flood
    #: fills ``held`` (up to MAX_DIGEST_ENTRIES) and rewrites the row at each commit, and
    #: encoding every entry again each time cost milliseconds (kept as they change)
    held_json: dict[str, tuple[int, int, str]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.total = sum(n for _, n in self.rate)
        self.rate_json = deque(encode(bucket) for bucket in self.rate)

    def add(self, t: float) -> None:
        second = int(t)
        self.total += 1
        rate = self.rate
        if rate and rate[-1][0] >= second:
            rate[-1][1] += 1  # an older event time than the last: same bucket
            return
        if rate:
            self.rate_json[-1] = encode(rate[-1])
        rate.append([second, 1])
        self.rate_json.append(f"[{second},1]")

    def count(self, now: float, per: float) -> int:
        """Alerts in the last ``per`` seconds (dropping older buckets)."""
        rate = self.rate
        while rate and rate[0][0] <= now - per:
            self.total -= rate.popleft()[1]
            self.rate_json.popleft()
        return self.total

    @property
    def held_hits(self) -> int:
        return sum(h.hits for h in self.held.values()) + self.other_hits

    def dump(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in _SCALARS}
        data["rate"] = list(self.rate)
        data["held"] = {k: flat(v) for k, v in self.held.items()}
        return data

    def saved_text(self) -> str:
        """``encode(self.dump())``, from the buckets' and the held entries' JSON kept as they
        changed."""
        head = encode({k: getattr(self, k) for k in _SCALARS})
        if self.rate:
            self.rate_json[-1] = encode(self.rate[-1])
        return (f'{head[:-1]},"rate":[{",".join(self.rate_json)}],'
                f'"held":{{{",".join(self._held_texts())}}}}}')

    def _held_texts(self) -> list[str]:
        """Each entry of ``held`` as ``encode`` writes it in the dict, made again only if its
        counts changed (its other fields never do); entries gone are forgotten."""
        known, texts = self.held_json, []
        kept: dict[str, tuple[int, int, str]] = {}
        for key, held in self.held.items():
            made = known.get(key)
            if made is None or made[0] != held.hits or made[1] != held.alerts:
                made = (held.hits, held.alerts, f"{encode(key)}:{encode(flat(held))}")
            kept[key] = made
            texts.append(made[2])
        self.held_json = kept
        return texts

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> Storm:
        held = {k: Held(**v) for k, v in data.get("held", {}).items()}
        rest = {k: v for k, v in data.items() if k not in ("rate", "held")}
        rate = deque(data.get("rate", []))
        return cls(rate=rate, held=held, **rest)


#: a storm's saved fields besides its rate and what it holds
_SCALARS = ("since", "due", "seq", "other_hits", "other_alerts", "resolved", "period_start")



class Storms:
    """The storm state of every destination, and the digests and notices it causes."""

    def __init__(self, config: Config, dirty: set[str]) -> None:
        self.config = config
        self.dirty = dirty
        self.by_dest: dict[str, Storm] = {}
        #: per severity, the destinations whose minimum it is below (unknown ones: none)
        self._skips = {severity: frozenset(name for name, d in config.destinations.items()
                                           if _RANK[severity] < _RANK[d.min_severity])
                       for severity in SEVERITIES}
        #: each destination's kv key (made per alert otherwise)
        self._keys = {name: f"s/{name}" for name in config.destinations}

    def split(self, to: tuple[str, ...], severity: Severity, t: float,
              out: list[Alert]) -> list[str]:
        """The destinations an alert goes to now; the others are storming and hold it.

        Counts the alert in each destination's rate (a storm that starts is announced
        in ``out``).
        """
        skips = self._skips[severity]
        # a destination whose minimum severity is above: its sender skips it, so it is not
        # a message and not in the rate
        direct = []
        for dest in to:
            if dest in skips or not self._storming(dest, t, out):
                direct.append(dest)
        return direct

    def _storming(self, dest: str, t: float, out: list[Alert]) -> bool:
        """Count one alert for ``dest``; start its storm (announced in ``out``) if over rate."""
        cfg = self.config.settings.storm
        storm = self.by_dest.get(dest)
        if storm is None:
            storm = self.by_dest[dest] = Storm()
        storm.add(t)
        self.dirty.add(self._keys.get(dest) or "s/" + dest)
        if storm.since is None and storm.count(t, cfg.per) > cfg.rate:
            storm.since = storm.period_start = t
            storm.due = t + cfg.digest_every
            storm.seq = 0
            out.append(self._notice(dest, storm, "in progress", t,
                                    f"More than {cfg.rate} alerts within {format_duration(cfg.per)}"
                                    f" for {dest}: one digest every "
                                    f"{format_duration(cfg.digest_every)} until it calms down."))
        return storm.since is not None

    def hold(self, dests: list[str], rule: str, severity: Severity, count: int, group: str,
             label: str) -> None:
        """Each storming destination in ``dests`` holds an alert of ``count`` hits."""
        # a rule without a `by` key: one digest line per distinct title
        key = f"{rule}\x1f{group}" if group else f"{rule}\x1f\x1e{label}"
        for dest in dests:
            storm = self.by_dest[dest]
            held = storm.held.get(key)
            if held is None and len(storm.held) < MAX_DIGEST_ENTRIES:
                held = storm.held[key] = Held(rule, label, severity, key=group)
            if held is None:
                storm.other_hits += count
                storm.other_alerts += 1
            else:
                held.hits += count
                held.alerts += 1

    def hold_resolved(self, dests: list[str]) -> None:
        """Each storming destination in ``dests`` counts a resolved follow-up in its digest."""
        for dest in dests:
            self.by_dest[dest].resolved += 1

    def tick(self, now: float) -> list[Alert]:
        """The digests due at ``now``."""
        out: list[Alert] = []
        for dest, storm in list(self.by_dest.items()):
            if storm.since is not None and storm.due <= now:
                out += self._digest(dest, storm, now)
        return out

    def next_due(self) -> list[float]:
        """When each storming destination's next digest is due."""
        return [s.due for s in self.by_dest.values() if s.since is not None]

    def _digest(self, dest: str, storm: Storm, now: float) -> list[Alert]:
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
        self.dirty.add(f"s/{dest}")
        return out

    def _digest_alert(self, dest: str, storm: Storm, when: float, over: bool) -> Alert:
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
            lines.append(f"and {len(rest)}{beyond} more ({plural(more_alerts, 'alert')}, "
                         f"{plural(more_hits, 'hit')})")
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
            title=f"Alert digest for {host} ({state}): {alerts} alerts, {plural(hits, 'hit')}",
            message="\n".join(lines), source="logwatch", host=host, time=when,
            count=hits, to=(dest,),
        )

    def _notice(self, dest: str, storm: Storm, state: str, when: float, message: str) -> Alert:
        host = self.config.settings.hostname
        return Alert(
            id=alert_id("storm", dest, state, repr(storm.since)),
            kind="system", rule="logwatch",
            severity="warning",  # both notices reach a channel that takes warnings
            title=f"Alert storm on {host}: {state}", message=message, source="logwatch",
            host=host, time=when, count=0, to=(dest,),
        )

    def status(self) -> dict[str, dict[str, Any]]:
        """For ``logwatch status``: each storming destination, what it holds, the next digest."""
        return {
            dest: {"since": s.since, "held_alerts": sum(h.alerts for h in s.held.values())
                   + s.other_alerts, "held_hits": s.held_hits, "next_digest": s.due}
            for dest, s in sorted(self.by_dest.items()) if s.since is not None
        }
