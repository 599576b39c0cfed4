"""What a sender does with the fleet: claims (fleet dedup) and shared pacing, at send time.

:class:`FleetSending` sits between a :class:`~logwatch.delivery.sender.Sender` and Redis.
Before a request, :meth:`~FleetSending.prepare` sorts the batch:

- an ``alert`` of a rule with ``dedup``: claim it; ``own`` -> send, ``counted`` (another
  host sent it) -> the row is skipped, its hits counted into that host's summary,
  ``wait`` (another host is sending it right now) -> wait for that host's answer;
- a dedup ``summary``: the owner's gets the tally ("also seen on N hosts (...)"), the
  others' are counted into it and skipped; a summary with nothing in it is skipped;
- then one fleet-wide pacing slot for the request.

After the answer, :meth:`~FleetSending.settle` confirms or releases the claims and
frees the slot (sharing a 429 or an empty rate-limit bucket with every host).
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
from logwatch.fleet.claims import FleetClaims, Tally, claim_name
from logwatch.fleet.keys import destination_identity
from logwatch.fleet.link import FleetLink, FleetUnavailable
from logwatch.fleet.pacing import SharedPacer
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


class FleetSending:
    """Claims and shared pacing for one destination's sender."""

    def __init__(self, link: FleetLink, config: Config, destination: str,
                 windows: tuple[Window, ...]) -> None:
        self.link = link
        self.host = link.host
        self.rules: dict[str, Rule] = {r.id: r for r in config.rules}
        identity = destination_identity(config.destinations[destination])
        self.identity = identity
        self.claims = FleetClaims(link) if identity is not None else None
        self.pacer = SharedPacer(link, identity, windows) if identity is not None else None
        #: what was done alone because Redis was unavailable, by feature
        self.fail_open: Counter[str] = Counter()

    @property
    def active(self) -> bool:
        """The destination posts somewhere shared (the console is per host)."""
        return self.identity is not None

    # -- before a request -------------------------------------------------------------

    def prepare(self, rows: list[outbox.Row], state: State) -> Prepared:
        """Sort ``rows`` (skipping those the fleet covers) and take a pacing slot."""
        ready = Prepared([])
        skipped: list[tuple[int, str]] = []
        for row in rows:
            verdict, value = self._sort(row, ready)
            if verdict == "wait":
                if not ready.rows:
                    ready.wait = float(value)  # type: ignore[arg-type]
                break
            if verdict == "skip":
                skipped.append((row.seq, str(value)))
            else:
                ready.rows.append(value)  # type: ignore[arg-type]
        if skipped:
            with state.transaction() as conn:
                for seq, reason in skipped:
                    outbox.finish(conn, [seq], "skipped", reason)
        if ready.rows and self.pacer is not None:
            try:
                wait, ready.slot = self.pacer.acquire()
            except FleetUnavailable:
                self.fail_open["pacing"] += 1
                wait = 0.0
            if wait > 0:
                return Prepared([], wait)
        return ready

    def _sort(self, row: outbox.Row, ready: Prepared) -> tuple[str, object]:
        """("send", row) | ("skip", reason) | ("wait", seconds)."""
        alert = row.alert
        rule = self.rules.get(alert.rule)
        claims = self.claims
        if (claims is None or rule is None or rule.dedup is None
                or alert.kind not in ("alert", "summary")):
            return "send", row
        name = claim_name(self.identity or "", rule.id, _dedup_key(rule.dedup.by, alert))
        try:
            if alert.kind == "summary":
                return self._summary(claims, row, name)
            return self._claim(claims, row, name, rule.dedup.window, ready)
        except FleetUnavailable:
            self.fail_open["claims"] += 1
            if alert.kind == "summary" and alert.count == 0:
                return "skip", "fleet unavailable: nothing suppressed on this host"
            return "send", row

    def _claim(self, claims: FleetClaims, row: outbox.Row, name: str, window: float,
               ready: Prepared) -> tuple[str, object]:
        claim = claims.claim(name, row.alert.count)
        if claim.verdict == "own":
            ready.owned[row.seq] = (name, window)
            return "send", row
        if claim.verdict == "wait":
            return "wait", min(max(claim.ttl, 0.01), WAIT_STEP)
        return "skip", f"fleet: {claim.owner} sent it; counted in its summary"

    def _summary(self, claims: FleetClaims, row: outbox.Row, name: str) -> tuple[str, object]:
        alert = row.alert
        tally = claims.summary(name, alert.count)
        if tally.verdict == "counted":
            return "skip", f"fleet: counted in the summary of {tally.owner}"
        if not tally.others:
            if alert.count == 0:
                return "skip", "nothing suppressed"
            return "send", row
        return "send", replace(row, alert=fleet_summary(alert, tally))

    # -- after the answer ------------------------------------------------------------

    def settle(self, prepared: Prepared, sent: list[outbox.Row], outcome: Outcome) -> None:
        """Confirm or release our claims in ``sent``; free the slot, sharing any pause."""
        try:
            self._settle(prepared, sent, outcome)
        except FleetUnavailable:
            self.fail_open["settle"] += 1

    def _settle(self, prepared: Prepared, sent: list[outbox.Row], outcome: Outcome) -> None:
        if self.pacer is not None and (prepared.slot or outcome.pause or outcome.retry_after):
            pause = outcome.pause or 0.0
            if outcome.verdict == "retry":
                pause = max(pause, outcome.retry_after or 0.0)
            self.pacer.finish(prepared.slot, pause)
        if self.claims is None:
            return
        for row in sent:
            if (owned := prepared.owned.get(row.seq)) is None:
                continue
            name, window = owned
            if outcome.verdict == "ok":
                self.claims.confirm(name, window)
            elif outcome.verdict in ("reject", "permanent"):
                self.claims.release(name)


def fleet_summary(alert: Alert, tally: Tally) -> Alert:
    """The owner's dedup summary with what the other hosts counted into it."""
    m = _SUMMARY_TITLE.fullmatch(alert.title)
    what = m[1] if m else alert.title
    total = alert.count + tally.hits
    hosts = len(tally.others) + 1
    here = f"{alert.message}.\n" if alert.count else ""
    return replace(
        alert, count=total,
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
