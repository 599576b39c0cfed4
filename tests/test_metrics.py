"""Prometheus metrics: a real ``logwatch run`` scraped over HTTP, and the ``[metrics]`` key."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from logwatch.config import load_config
from logwatch.config.load import parse_listen
from logwatch.errors import ConfigError
from logwatch.metrics import PrometheusMetrics
from tests.daemon.test_service import ALPHA, append, make_config
from tests.fakeapi import WEBHOOK_TOKEN, FakeAPI
from tests.helpers import REPO, Daemon, wait_for, write

prometheus = pytest.importorskip("prometheus_client", reason="the metrics extra is not installed")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

#: every series docs/service.md documents (histograms by their _count)
DOCUMENTED = {
    "logwatch_lines_read_total", "logwatch_rule_hits_total", "logwatch_alerts_queued_total",
    "logwatch_alerts_delivered_total", "logwatch_outbox_pending", "logwatch_outbox_dead",
    "logwatch_delivery_latency_seconds_count", "logwatch_rate_limited_total",
    "logwatch_source_lag_bytes", "logwatch_last_delivery_timestamp_seconds",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text: str = reply.read().decode()
        return text


def scrape_when(port: int, *needles: str) -> str | None:
    """The scrape, if it shows every one of ``needles``."""
    text = scrape(port)
    return text if all(n in text for n in needles) else None


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``{(name, labels): value}`` from the text format."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


class TestListen:
    """``[metrics] listen`` is checked like every other key."""

    @pytest.mark.parametrize(("text", "expected"), [
        ("127.0.0.1:9101", ("127.0.0.1", 9101)), ("[::1]:9101", ("::1", 9101)),
        (":9101", ("0.0.0.0", 9101)), ("localhost:1", ("localhost", 1)),
    ])
    def test_good(self, text: str, expected: tuple[str, int]) -> None:
        assert parse_listen(text) == expected

    @pytest.mark.parametrize("text", ["9101", "host:0", "host:65536", "host:http", "::1:9101",
                                      "", 9101])
    def test_bad(self, text: object) -> None:
        with pytest.raises(ValueError, match=r"expected|brackets"):
            parse_listen(text)

    def test_config_errors_name_the_key(self, tmp_path: Path) -> None:
        config = make_config(tmp_path, ALPHA, extra='[metrics]\nlisten = "9101"\nport = 1\n')
        with pytest.raises(ConfigError) as err:
            load_config(config)
        text = "\n".join(err.value.problems)
        assert "metrics: listen: expected \"HOST:PORT\"" in text
        assert "metrics: unknown key 'port'" in text

    def test_absent_or_set(self, tmp_path: Path) -> None:
        assert load_config(make_config(tmp_path, ALPHA)).metrics_listen is None
        config = make_config(tmp_path, ALPHA, extra='[metrics]\nlisten = "127.0.0.1:9109"\n')
        assert load_config(config).metrics_listen == ("127.0.0.1", 9109)

    def test_not_in_an_include(self, tmp_path: Path) -> None:
        write(tmp_path / "more.toml", '[metrics]\nlisten = "127.0.0.1:9101"\n')
        config = make_config(tmp_path, ALPHA).read_text().replace(
            "[logwatch]\n", f'[logwatch]\ninclude = ["{tmp_path / "more.toml"}"]\n')
        with pytest.raises(ConfigError, match=r"\[metrics\] belongs in the main config only"):
            load_config(write(tmp_path / "logwatch.toml", config))


@pytest.fixture
def fake() -> Iterator[FakeAPI]:
    with FakeAPI(discord_window=(5, 0.2)) as api:
        yield api


@pytest.fixture
def other() -> Iterator[FakeAPI]:
    """A second service, so that failures asked of ``fake`` go to one destination only."""
    with FakeAPI(discord_window=(5, 0.2)) as api:
        yield api


def test_a_running_daemon_is_scraped(tmp_path: Path, fake: FakeAPI, other: FakeAPI) -> None:
    """Lines, hits, queued and delivered alerts, a 429, dead rows, latency, last delivery."""
    port = free_port()
    extra = ('[destinations.oncall]\ntype = "discord"\nurl = "${FAKE_DISCORD}"\n'
             '[destinations.gone]\ntype = "discord"\nurl = "${GONE_DISCORD}"\n'
             f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
    config = make_config(tmp_path, ALPHA, extra=extra)
    log = write(tmp_path / "app.log", "")
    env = {"FAKE_DISCORD": fake.discord_url(),
           "GONE_DISCORD": other.discord_url(webhook_id="404404")}  # unknown webhook: dead
    started = time.time()
    with Daemon(config, env=env) as daemon:
        daemon.wait_stderr(f"serving Prometheus metrics on http://127.0.0.1:{port}/metrics")
        fake.fail("429", times=1)
        append(log, "noise", "alpha 1 <@everyone> from a hostile line")
        wait_for(lambda: len(fake.bodies("discord")) >= 1, 20, message="first delivery")
        append(log, "alpha 2")
        wait_for(lambda: len(fake.bodies("discord")) >= 2, 20, message="second delivery")
        # the fake records a request before it answers, the daemon counts after the answer;
        # one scrape reads the outbox's gauges and the counters one after the other, so a
        # delivery may land between them: wait for all three to agree
        text = wait_for(lambda: scrape_when(
            port, 'outbox_dead{destination="gone"} 1.0',
            'delivered_total{destination="oncall",kind="alert"} 2.0',
            'outbox_pending{destination="oncall"} 0.0'), 20, message="settled")
        found = samples(text)
        assert daemon.stop() == 0
    assert value(found, "logwatch_lines_read_total", source="app") == 3
    assert value(found, "logwatch_rule_hits_total", rule="alpha") == 2
    for dest in ("oncall", "gone"):
        assert value(found, "logwatch_alerts_queued_total", destination=dest, kind="alert") == 2
    assert value(found, "logwatch_alerts_delivered_total", destination="oncall",
                 kind="alert") == 2
    assert value(found, "logwatch_rate_limited_total", destination="oncall") == 1
    assert value(found, "logwatch_outbox_pending", destination="oncall") == 0
    assert value(found, "logwatch_outbox_dead", destination="oncall") == 0
    # a refused destination: the first row dead, the rest held for a fixed config
    assert value(found, "logwatch_outbox_dead", destination="gone") == 1
    assert value(found, "logwatch_outbox_pending", destination="gone") == 1
    assert value(found, "logwatch_delivery_latency_seconds_count", destination="oncall") == 3
    last = value(found, "logwatch_last_delivery_timestamp_seconds", destination="oncall")
    assert last is not None and started <= last <= time.time()
    assert value(found, "logwatch_source_lag_bytes", source="app") == 0
    assert value(found, "process_resident_memory_bytes") is not None
    assert {name for name, _ in found} >= DOCUMENTED
    assert "_created" not in text
    # configured names are there before anything happened to them
    assert value(found, "logwatch_rate_limited_total", destination="gone") == 0
    # a label is a name from the config or an alert kind: no secret, no log text
    assert WEBHOOK_TOKEN not in text and "404404" not in text
    assert "everyone" not in text and "hostile" not in text


def test_source_lag_is_read_from_the_state_at_scrape_time(tmp_path: Path) -> None:
    """Bytes appended after the last checkpoint show as lag, without the daemon running."""
    config = make_config(tmp_path, ALPHA)
    log = write(tmp_path / "app.log", "alpha 1\n")
    with Daemon(config) as daemon:
        daemon.wait_stderr("sends to console")
        append(log, "alpha 2")
        daemon.wait_stdout("alpha 2")
        assert daemon.stop() == 0
    append(log, "x" * 99)  # 100 bytes with the newline
    metrics = PrometheusMetrics(("127.0.0.1", free_port()))
    try:
        metrics.watch(tmp_path / "state" / "state.sqlite3", ["console"])
        found = samples(scrape(metrics.listen[1]))
    finally:
        metrics.close()
    assert value(found, "logwatch_source_lag_bytes", source="app") == 100
    assert value(found, "logwatch_outbox_pending", destination="console") == 0


def test_a_busy_port_is_one_error_and_alerting_goes_on(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = make_config(tmp_path, ALPHA, extra=f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
        log = write(tmp_path / "app.log", "")
        with Daemon(config) as daemon:
            daemon.wait_stderr("sends to console")
            append(log, "alpha 7")
            daemon.wait_stdout("alpha 7")
            assert daemon.stop() == 0
            errors = [line for line in daemon.stderr.splitlines() if "metrics:" in line]
    assert len(errors) == 1
    assert errors[0].endswith(f"ERROR logwatch.metrics: metrics: cannot listen on "
                              f"127.0.0.1:{port}: Address already in use; running without metrics")


def test_not_imported_unless_configured(tmp_path: Path) -> None:
    """A daemon without ``[metrics]`` never imports prometheus_client."""
    config = make_config(tmp_path, ALPHA)
    write(tmp_path / "app.log", "")
    code = (
        "import sys\n"
        "from logwatch.config import load_config\n"
        "from logwatch.daemon.service import Service\n"
        f"s = Service(load_config({str(config)!r}))\n"
        "s.startup(); s.pump(); s.tick(); s.shutdown()\n"
        "assert 'prometheus_client' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
