"""One host's view of a fleet store, one operation at a time, for readable tests."""

from __future__ import annotations

from dataclasses import dataclass

from logwatch.delivery.destinations.types import Window
from logwatch.fleet.claims import LEASE
from logwatch.fleet.store import Answer, Ask, FleetStore, Pace, Settle

NO_PACING = Pace("dest-identity")


@dataclass
class HostView:
    """``store`` as host ``host`` sees it; ``pace`` is the destination."""

    store: FleetStore
    host: str
    pace: Pace = NO_PACING
    lease: float = LEASE

    def claim(self, name: str, hits: int = 1) -> Answer:
        """Claim an alert's ``name`` before sending it."""
        return self.store.begin(self.host, self.pace, [Ask("alert", name, hits)],
                                self.lease).answers[0]

    def confirm(self, name: str, hold: float = 60.0) -> None:
        """Our send of ``name`` worked."""
        self.store.end(self.host, self.pace, "", 0.0, [Settle(name, True, hold)])

    def release(self, name: str) -> None:
        """Our send of ``name`` failed for good."""
        self.store.end(self.host, self.pace, "", 0.0, [Settle(name, False)])

    def summary(self, name: str, hits: int, token: str = "") -> Answer:
        """Our dedup summary of ``name``, holding ``hits`` (``token``: which summary)."""
        return self.store.begin(self.host, self.pace, [Ask("summary", name, hits, token)],
                                self.lease).answers[0]

    def acquire(self) -> tuple[float, str]:
        """A pacing slot for a request without claims: (wait, slot)."""
        begun = self.store.begin(self.host, self.pace, [Ask("plain")], self.lease)
        return begun.wait, begun.slot

    def finish(self, slot: str, pause: float = 0.0) -> None:
        """The request of ``slot`` got its answer."""
        self.store.end(self.host, self.pace, slot, pause, [])


def paced(identity: str, *windows: Window) -> Pace:
    """A destination with these windows."""
    return Pace(identity, tuple(windows))
