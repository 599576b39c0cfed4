"""What a sender does with the fleet: claims (fleet dedup) and shared pacing, at send time.

:class:`FleetSending` sits between a :class:`~logwatch.delivery.sender.Sender` and the
fleet's :class:`~logwatch.fleet.store.FleetStore`. A request costs two round trips.
Before it, :meth:`~FleetSending.prepare` asks the store (``begin``) in one call for the
pacing wait, the claims of the batch and a pacing slot, and sorts the batch:

- an ``alert`` of a rule with ``dedup``: ``own`` -> send, ``counted`` (another host
  sent it) -> the row is skipped, its hits counted into that host's summary,
  ``wait`` (another host is sending it right now) -> wait for that host's answer;
- a dedup ``summary``: the owner's gets the tally ("also seen on N hosts (...)"), the
  others' are counted into it and skipped; a summary with nothing in it is skipped;
- when the fleet's pace says wait, nothing is sent (the skipped rows stay skipped).

After the answer, :meth:`~FleetSending.settle` (``end``) frees the slot (sharing a 429
or an empty rate-limit bucket with every host) and confirms or releases the claims.
Each step fails open when Redis is unavailable: the row is sent (a duplicate is
possible and counted in ``fail_open``), the sender paces itself alone.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field, replace

import regex

import logwatch.delivery.outbox as outbox
from logwatch.config import Config
from logwatch.delivery.destinations.types import Outcome, Window
from logwatch.fleet.claims import GRACE, LEASE, Tally, claim_name
from logwatch.fleet.keys import destination_identity, digest
from logwatch.fleet.link import FleetUnavailable
from logwatch.fleet.store import Answer, Ask, FleetStore, Pace, Settle
from logwatch.models import Alert
from logwatch.rules import Rule
from logwatch.state import State
from logwatch.template import Template

log = logging.getLogger(__name__)

#: how often a host waiting for another host's claim looks again
WAIT_STEP = 0.1
_SUMMARY_TITLE = regex.compile(r"\d+ more '(.*)' suppressed", regex.DOTALL)


@dataclass
class Prepared:
    """A batch sorted for sending: the rows to send now, or how long to wait first."""

    rows: list[outbox.Row]
    wait: float = 0.0
    #: pacing slot held for this request ("" when pacing is local only)
    slot: str = ""
    #: claims this host owns in ``rows``: seq -> (claim name, dedup window)
    owned: dict[int, tuple[str, float]] = field(default_factory=dict)
    #: rows the fleet covers: (seq, why)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    #: rows of ``rows`` whose alert now holds what the store gave (the owner's summary
    #: with the others' tally): saved before the request, for a retry to send it again
    revised: list[outbox.Row] = field(default_factory=list)


class FleetSending:
    """Claims and shared pacing for one host's sender to one destination."""

    def __init__(self, store: FleetStore, host: str, config: Config, destination: str,
                 windows: tuple[Window, ...]) -> None:
        self.store = store
        self.host = host
        self.rules: dict[str, Rule] = {r.id: r for r in config.rules}
        identity = destination_identity(config.destinations[destination])
        self.identity = identity
        self.pace = Pace(identity or "", windows)
        #: what was done alone because Redis was unavailable, by feature
        self.fail_open: Counter[str] = Counter()

    @property
    def active(self) -> bool:
        """The destination posts somewhere shared (the console is per host)."""
        return self.identity is not None

    # -- before a request -------------------------------------------------------------

    def prepare(self, rows: list[outbox.Row], state: State) -> Prepared:
        """Sort ``rows`` (finishing those the fleet covers as skipped, saving the revised
        ones) and take a slot."""
        prepared = self.sort(rows)
        if prepared.skipped or prepared.revised:
            with state.transaction() as conn:
                for seq, reason in prepared.skipped:
                    outbox.finish(conn, [seq], "skipped", reason)
                for row in prepared.revised:
                    outbox.revise(conn, row.seq, row.alert)
        return prepared

    def sort(self, rows: list[outbox.Row]) -> Prepared:
        """What to send, skip or wait for: one ``begin`` round trip (none for the console)."""
        if not self.active:
            return Prepared(rows)
        asks = [self._ask(row) for row in rows]
        try:
            begun = self.store.begin(self.host, self.pace, [a for _, a in asks], LEASE)
        except FleetUnavailable:
            return self._alone(rows, asks)
        ready = Prepared([])
        for row, (window, ask), answer in zip(rows, asks, begun.answers, strict=False):
            if answer.verdict == "wait":
                if not ready.rows:
                    ready.wait = min(max(answer.ttl, 0.01), WAIT_STEP)
                break
            if begun.wait > 0 and ask.kind == "summary" and answer.verdict == "own":
                ready.rows.append(row)  # its tally stays in the store until it can go
                continue
            verdict, value = self._verdict(row, ask, answer)
            if verdict == "skip":
                ready.skipped.append((row.seq, value))  # type: ignore[arg-type]
                continue
            if ask.kind == "alert":
                ready.owned[row.seq] = (ask.name, window)
            if value is not row:
                ready.revised.append(value)  # type: ignore[arg-type]
            ready.rows.append(value)  # type: ignore[arg-type]
        if ready.rows and begun.wait > 0:
            return Prepared([], begun.wait, skipped=ready.skipped)
        ready.slot = begun.slot
        return ready

    def _ask(self, row: outbox.Row) -> tuple[float, Ask]:
        """(dedup window, what to ask the store) for one row."""
        alert = row.alert
        rule = self.rules.get(alert.rule)
        if rule is None or rule.dedup is None or alert.kind not in ("alert", "summary"):
            return 0.0, Ask("plain")
        if alert.kind == "summary" and "hosts" in alert.fields:
            return 0.0, Ask("plain")  # it already holds the tally (tried before: a retry)
        name = claim_name(self.identity or "", rule.id, _dedup_key(rule.dedup.by, alert))
        if alert.kind == "summary":
            # the token: the same summary row asks with the same one after a restart
            return rule.dedup.window, Ask("summary", name, max(alert.count, 0),
                                          digest(name, alert.id))
        return rule.dedup.window, Ask("alert", name, max(alert.count, 1))

    def _verdict(self, row: outbox.Row, ask: Ask, answer: Answer) -> tuple[str, object]:
        """("send", row) | ("skip", reason), from the store's answer."""
        alert = row.alert
        if answer.verdict == "counted":
            if ask.kind == "summary":
                return "skip", f"fleet: counted in the summary of {answer.owner}"
            return "skip", f"fleet: {answer.owner} sent it; counted in its summary"
        if ask.kind != "summary":
            return "send", row
        if not answer.others:
            return ("skip", "nothing suppressed") if alert.count == 0 else ("send", row)
        tally = Tally("own", self.host, answer.others)
        return "send", replace(row, alert=fleet_summary(alert, tally))

    def _alone(self, rows: list[outbox.Row], asks: list[tuple[float, Ask]]) -> Prepared:
        """Redis is unavailable: send every row (duplicates possible), pace alone."""
        self.fail_open["pacing"] += 1
        ready = Prepared([])
        for row, (_, ask) in zip(rows, asks, strict=True):
            if ask.kind != "plain":
                self.fail_open["claims"] += 1
            if ask.kind == "summary" and row.alert.count == 0:
                ready.skipped.append((row.seq, "fleet unavailable: nothing suppressed on "
                                      "this host"))
            else:
                ready.rows.append(row)
        return ready

    # -- after the answer ------------------------------------------------------------

    def settle(self, prepared: Prepared, sent: list[outbox.Row], outcome: Outcome) -> None:
        """Free the slot, sharing any pause, and confirm or release our claims in ``sent``."""
        if not self.active:
            return
        pause = outcome.pause or 0.0
        if outcome.verdict == "retry":
            pause = max(pause, outcome.retry_after or 0.0)
        settles = []
        if outcome.verdict in ("ok", "reject", "permanent"):
            for row in sent:
                if (owned := prepared.owned.get(row.seq)) is not None:
                    name, window = owned
                    settles.append(Settle(name, outcome.verdict == "ok", window + GRACE))
        if not (prepared.slot or pause > 0 or settles):
            return
        try:
            self.store.end(self.host, self.pace, prepared.slot, pause, settles)
        except FleetUnavailable:
            self.fail_open["settle"] += 1


def fleet_summary(alert: Alert, tally: Tally) -> Alert:
    """The owner's dedup summary with what the other hosts counted into it."""
    m = _SUMMARY_TITLE.fullmatch(alert.title)
    what = m[1] if m else alert.title
    total = alert.count + tally.hits
    hosts = len(tally.others) + 1
    here = f"{alert.message}.\n" if alert.count else ""
    return alert._replace(
        count=total,
        title=f"{total} more '{what}' on {hosts} hosts",
        message=f"{here}'{what}' {tally.describe()}.",
        fields={**alert.fields, "hosts": str(hosts)},
    )


def _dedup_key(by: Template, alert: Alert) -> str:
    """The dedup key of ``alert`` as the policy rendered it (summaries carry it)."""
    if alert.kind == "summary":
        return alert.fields.get("key", "")
    values: dict[str, object] = {**alert.fields, "host": alert.host, "rule": alert.rule,
                                 "source": alert.source, "line": alert.line,
                                 "severity": alert.severity}
    return by.render(values)
