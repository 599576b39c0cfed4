"""Prometheus metrics: ``[metrics] listen = "127.0.0.1:9101"``, text format on ``/metrics``.

The pipeline reports through :func:`current`, a recorder whose methods do
nothing until :func:`configure` is given an address; only then is
``prometheus-client`` (the ``metrics`` extra) imported and a server started. A
bind failure or a missing package is one error line: alerting goes on without
metrics.

Counters are recorded where things happen (lines read, hits, alerts queued
and delivered, requests, 429s); the outbox and the sources' lag are read from
the state database when Prometheus scrapes, from the scraping thread (a
read-only SQLite connection of its own). Labels are names from the config
(source, rule id, destination) and the alert kind: never a secret, never text
from a log.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from logwatch.models import Alert

log = logging.getLogger(__name__)

#: request durations, from a fast local proxy to a slow API behind a CDN
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The recorder the pipeline calls; this base class records nothing (metrics are off)."""

    enabled = False

    def lines_read(self, source: str, count: int) -> None:
        """``count`` lines of ``source`` were read and matched."""

    def hit(self, rule: str) -> None:
        """A line matched ``rule``."""

    def queued(self, alerts: Iterable[Alert]) -> None:
        """Alerts (of any kind) entered the outbox, one row per destination."""

    def request(self, destination: str, seconds: float) -> None:
        """A request to a destination's service took ``seconds`` (whatever its answer)."""

    def delivered(self, destination: str, alerts: Iterable[Alert]) -> None:
        """The service took these alerts."""

    def rate_limited(self, destination: str) -> None:
        """The service answered 429."""

    def watch(self, state_db: Path, destinations: Sequence[str], sources: Sequence[str] = (),
              rules: Sequence[str] = ()) -> None:
        """Where the state is read at scrape time; the configured names, shown at 0 until used."""

    def close(self) -> None:
        """Stop serving."""


class PrometheusMetrics(Metrics):
    """Counters in a private registry, served by prometheus-client's HTTP server."""

    enabled = True

    def __init__(self, listen: tuple[str, int]) -> None:
        import prometheus_client as prom

        prom.disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` twins
        self.listen = listen
        self.registry = prom.CollectorRegistry()
        for collector in (prom.ProcessCollector, prom.PlatformCollector, prom.GCCollector):
            collector(registry=self.registry)
        self._state = _StateCollector()
        self.registry.register(self._state)

        def counter(name: str, text: str, *labels: str) -> Any:
            return prom.Counter(name, text, labels, registry=self.registry)

        self._lines = counter("logwatch_lines_read", "Lines read and matched.", "source")
        self._hits = counter("logwatch_rule_hits", "Lines a rule matched.", "rule")
        self._queued = counter("logwatch_alerts_queued",
                               "Outbox rows written, by kind (alert, summary, digest, "
                               "resolved, system).", "destination", "kind")
        self._delivered = counter("logwatch_alerts_delivered", "Outbox rows delivered, by kind.",
                                  "destination", "kind")
        self._limited = counter("logwatch_rate_limited", "429 answers from the service.",
                                "destination")
        self._latency = prom.Histogram(
            "logwatch_delivery_latency_seconds",
            "Time a request to the service took until its answer.", ["destination"],
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self._last = prom.Gauge("logwatch_last_delivery_timestamp_seconds",
                                "Unix time of the last successful delivery.", ["destination"],
                                registry=self.registry)
        self._server, self._thread = prom.start_http_server(listen[1], listen[0],
                                                            registry=self.registry)

    def lines_read(self, source: str, count: int) -> None:
        self._lines.labels(source).inc(count)

    def hit(self, rule: str) -> None:
        self._hits.labels(rule).inc()

    def queued(self, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            for destination in alert.to:
                self._queued.labels(destination, alert.kind).inc()

    def request(self, destination: str, seconds: float) -> None:
        self._latency.labels(destination).observe(seconds)

    def delivered(self, destination: str, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            self._delivered.labels(destination, alert.kind).inc()
        self._last.labels(destination).set_to_current_time()

    def rate_limited(self, destination: str) -> None:
        self._limited.labels(destination).inc()

    def watch(self, state_db: Path, destinations: Sequence[str], sources: Sequence[str] = (),
              rules: Sequence[str] = ()) -> None:
        self._state.watch(state_db, destinations)
        # a series that exists from the start: rate() and alerts on it work from the first scrape
        for name in destinations:
            for metric in (self._limited, self._latency):
                metric.labels(name)
            for metric in (self._queued, self._delivered):
                metric.labels(name, "alert")
        for name in sources:
            self._lines.labels(name)
        for name in rules:
            self._hits.labels(name)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)


class _StateCollector:
    """Gauges read from the state database when scraped: outbox rows, source lag."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._db: Path | None = None
        self._destinations: tuple[str, ...] = ()

    def watch(self, state_db: Path, destinations: Sequence[str]) -> None:
        with self._lock:
            self._db, self._destinations = state_db, tuple(destinations)

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        with self._lock:
            db, destinations = self._db, self._destinations
        pending = GaugeMetricFamily("logwatch_outbox_pending",
                                    "Outbox rows waiting for delivery.", labels=["destination"])
        dead = GaugeMetricFamily("logwatch_outbox_dead",
                                 "Outbox rows given up on (see logwatch status; logwatch retry).",
                                 labels=["destination"])
        lag = GaugeMetricFamily("logwatch_source_lag_bytes",
                                "Bytes written to a source's files and not read yet.",
                                labels=["source"])
        counts, lags = _read_state(db) if db is not None else ({}, {})
        for name in sorted(set(destinations) | set(counts)):
            pending.add_metric([name], counts.get(name, {}).get("pending", 0))
            dead.add_metric([name], counts.get(name, {}).get("dead", 0))
        for name, value in sorted(lags.items()):
            lag.add_metric([name], value)
        yield from (pending, dead, lag)


def _read_state(db: Path) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Outbox counts per destination and summed file lag per source; empty when unreadable."""
    import logwatch.delivery.outbox as outbox
    from logwatch.sources import checkpoint_rows
    from logwatch.state import get_values

    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2.0)
    except sqlite3.Error:
        return {}, {}
    try:
        counts = outbox.counts(conn)
        checkpoints = get_values(conn, "checkpoint")
    except sqlite3.Error as exc:
        log.debug("metrics: cannot read %s: %s", db, exc)
        return {}, {}
    finally:
        conn.close()
    lags: dict[str, int] = {}
    for name, checkpoint in checkpoints.items():
        behind = [r["lag"] for r in checkpoint_rows(name, checkpoint or {})
                  if isinstance(r.get("lag"), int)]
        if behind:  # a journal source has a cursor, no byte lag
            lags[name] = sum(behind)
    return counts, lags


_current: Metrics = Metrics()
_lock = threading.Lock()


def current() -> Metrics:
    """The recorder in use (a no-op one when metrics are not configured)."""
    return _current


def configure(listen: tuple[str, int] | None) -> Metrics:
    """Serve on ``listen`` (None: stop serving); the same address keeps its counters.

    Called at every start and reload; never raises: a failure is one error line.
    """
    global _current  # noqa: PLW0603 - one recorder per process, like the logging config
    with _lock:
        if isinstance(_current, PrometheusMetrics) and _current.listen == listen:
            return _current
        _current.close()
        _current = Metrics()
        if listen is not None:
            _current = _start(listen)
        return _current


def _start(listen: tuple[str, int]) -> Metrics:
    where = f"[{listen[0]}]:{listen[1]}" if ":" in listen[0] else f"{listen[0]}:{listen[1]}"
    try:
        started = PrometheusMetrics(listen)
    except ImportError:
        log.error("metrics: prometheus-client is not installed (pip install "
                  "'logwatch-alerts[metrics]'); running without metrics")
        return Metrics()
    except OSError as exc:
        log.error("metrics: cannot listen on %s: %s; running without metrics", where,
                  exc.strerror or exc)
        return Metrics()
    log.info("metrics: serving Prometheus metrics on http://%s/metrics", where)
    return started
