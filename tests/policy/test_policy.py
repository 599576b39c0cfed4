"""The alert policy: thresholds, dedup with summaries, storms, resolve, and its saved state.

Every test runs on a fake clock: event times are set on the lines, timers run by
calling ``tick(now)`` with the time wanted.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from logwatch.config import Config, load_config
from logwatch.models import Alert, Hit, LogLine
from logwatch.policy import NS, STATUS_NS, Policy, clock_span, clock_time
from logwatch.state import State, get_values, put_value
from tests.helpers import write

T0 = 1_750_000_000.0  # a fixed start: tests never read the real clock

HEAD = """\
[logwatch]
hostname = "web-1"
state_dir = "{state}"
storm = {{ rate = {rate}, per = "1m", digest_every = "5m", top = 3 }}

[destinations.oncall]
type = "console"

[destinations.ops]
type = "console"
"""

SSH = """
[[rules]]
id = "ssh"
match = 'Failed password for (?P<user>\\S+) from (?P<ip>\\S+)'
title = "SSH brute force from {ip}"
message = "{count} failed passwords from {ip} within {within} ({first} to {last})"
to = ["oncall"]
"""


def make_config(tmp_path: Path, rules: str, *, rate: int = 1000) -> Config:
    """A real config file in ``tmp_path`` with ``rules`` appended."""
    text = HEAD.format(state=tmp_path / "state", rate=rate) + rules
    return load_config(write(tmp_path / "logwatch.toml", text))


def rule(extra: str = "", *, rid: str = "ssh", to: str = '["oncall"]') -> str:
    """The SSH rule with ``extra`` keys (threshold, dedup, resolve...)."""
    return SSH.replace('id = "ssh"', f'id = "{rid}"').replace('to = ["oncall"]', f"to = {to}") \
        + extra + "\n"


class Feeder:
    """Hands hits to a policy with increasing line keys; collects every alert."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.n = 0
        self.alerts: list[Alert] = []

    def hit(self, t: float, ip: str = "1.2.3.4", *, rule: str = "ssh", user: str = "root",
            kind: str = "match") -> list[Alert]:
        self.n += 1
        text = f"Failed password for {user} from {ip} port 22"
        line = LogLine(text, "auth", "/var/log/auth.log", f"auth@{self.n}", T0 + t)
        out = self.policy.feed(Hit(rule, {"user": user, "ip": ip}, line,
                                   "resolve" if kind == "resolve" else "match"))
        self.alerts += out
        return out

    def tick(self, t: float) -> list[Alert]:
        out = self.policy.tick(T0 + t)
        self.alerts += out
        return out

    def finish(self, t: float) -> None:
        """Run every timer to its end, then let threshold windows expire at ``t``."""
        while (due := self.policy.next_due()) is not None:
            self.alerts += self.policy.tick(due)
        self.tick(t)


@contextmanager
def traced_after_a_save(feeder: Feeder, conn: sqlite3.Connection) -> Iterator[list[str]]:
    """Save ``feeder``'s policy, then collect the SQL statements ``conn`` runs in the block."""
    feeder.policy.save(conn)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        yield statements
    finally:
        conn.set_trace_callback(None)


def saved_keys(rows: dict[str, object], kind: str) -> list[tuple[str, str]]:
    """``(rule, key)`` of the saved rows of one table (``KIND/BIRTH/rule/key``), in kv order."""
    return [tuple(kv_key.split("/", 3)[2:]) for kv_key in sorted(rows)  # type: ignore[misc]
            if kv_key.startswith(f"{kind}/")]


def saved(rows: dict[str, object], kind: str, rule_id: str, key: str) -> object:
    """The saved value of one table row, whatever its birth."""
    found = [value for kv_key, value in rows.items()
             if kv_key.startswith(f"{kind}/") and kv_key.split("/", 3)[2:] == [rule_id, key]]
    assert len(found) == 1, f"{len(found)} saved rows for {kind} {rule_id} {key}"
    return found[0]


def kinds(alerts: Iterable[Alert]) -> list[str]:
    return [a.kind for a in alerts]


def counted(alerts: Iterable[Alert], dest: str = "oncall") -> Counter[str]:
    """Hits per alert kind, as ``dest`` receives them."""
    out: Counter[str] = Counter()
    for a in alerts:
        if dest in a.to and a.count:
            out[a.kind] += a.count
    return out


# ---------------------------------------------------------------------------


class TestThreshold:
    """``threshold = { count, within, by }``: a sliding window per rendered key."""

    @pytest.fixture
    def feeder(self, tmp_path: Path) -> Feeder:
        th = 'threshold = { count = 3, within = "10m", by = "{ip}" }'
        return Feeder(Policy(make_config(tmp_path, rule(th))))

    def test_count_minus_one_hits_stay_silent(self, feeder: Feeder) -> None:
        """Two hits of three: nothing."""
        assert feeder.hit(0) == []
        assert feeder.hit(60) == []
        assert feeder.policy.pending_hits == 2

    def test_exactly_count_hits_fire_once_with_the_window_in_the_message(
        self, feeder: Feeder
    ) -> None:
        """The third hit fires one alert standing for the three; the window starts over."""
        feeder.hit(0)
        feeder.hit(60)
        [alert] = feeder.hit(120)
        assert alert.kind == "alert"
        assert alert.count == 3
        assert alert.title == "SSH brute force from 1.2.3.4"
        assert alert.message == (f"3 failed passwords from 1.2.3.4 within 10m "
                                 f"({clock_time(T0)} to {clock_time(T0 + 120)})")
        assert feeder.policy.pending_hits == 0
        assert feeder.hit(130) == []

    def test_hits_spread_just_outside_within_never_fire(self, feeder: Feeder) -> None:
        """One hit every 5m00.5s: never three within 10m; the old hits fall below threshold."""
        for i in range(6):
            assert feeder.hit(i * 300.5) == []
        feeder.finish(10_000)
        assert feeder.alerts == []
        assert feeder.policy.counters.below["ssh"] == 6

    def test_hits_that_left_the_window_together_fall_below_at_once(
            self, feeder: Feeder) -> None:
        """Two hits, then one 10m01s after both: both leave the window (below threshold), the
        third stays in it and fires with the next two."""
        feeder.hit(0)
        feeder.hit(1)
        assert feeder.hit(602) == []
        assert feeder.policy.counters.below["ssh"] == 2
        assert feeder.policy.pending_hits == 1
        feeder.hit(603)
        [alert] = feeder.hit(604)
        assert alert.count == 3

    def test_hits_exactly_within_apart_fire(self, feeder: Feeder) -> None:
        """The window is inclusive: three hits spanning exactly 10m fire."""
        feeder.hit(0)
        feeder.hit(300)
        assert kinds(feeder.hit(600)) == ["alert"]

    def test_keys_are_separate(self, feeder: Feeder) -> None:
        """Hits from different addresses never add up."""
        for i in range(2):
            for ip in ("1.1.1.1", "2.2.2.2", "3.3.3.3"):
                assert feeder.hit(i, ip) == []
        assert [a.fields["ip"] for a in feeder.hit(5, "2.2.2.2")] == ["2.2.2.2"]

    def test_without_dedup_every_count_hits_fire_again(self, feeder: Feeder) -> None:
        """Nine hits: three alerts of three."""
        for i in range(9):
            feeder.hit(i)
        assert [a.count for a in feeder.alerts] == [3, 3, 3]

    def test_expired_windows_are_dropped_by_tick(self, feeder: Feeder) -> None:
        """A key with no hit for ``within`` leaves memory, its hits counted below threshold."""
        feeder.hit(0, "1.1.1.1")
        feeder.hit(0, "2.2.2.2")
        feeder.hit(500, "2.2.2.2")
        feeder.tick(601)
        assert feeder.policy.status()["live_keys"]["threshold"] == 1
        assert feeder.policy.counters.below["ssh"] == 1


class TestDedup:
    """``dedup = { by, for }``: one alert, the rest counted, one summary from a timer."""

    @pytest.fixture
    def feeder(self, tmp_path: Path) -> Feeder:
        return Feeder(Policy(make_config(tmp_path, rule('dedup = { by = "{ip}", for = "1h" }'))))

    def test_suppressed_hits_come_back_as_one_summary_from_the_timer(
        self, feeder: Feeder
    ) -> None:
        """37 more hits in the hour: silence, then at the hour's end one summary saying so."""
        [first] = feeder.hit(0)
        for i in range(37):
            assert feeder.hit(60 + i * 60) == []
        assert feeder.tick(3599) == []
        assert feeder.policy.next_due() == T0 + 3600
        [summary] = feeder.tick(3600)
        a, b = clock_span(T0 + 60, T0 + 60 + 36 * 60)
        assert summary.kind == "summary"
        assert summary.count == 37
        assert summary.message == (f"37 more 'SSH brute force from 1.2.3.4' suppressed "
                                   f"between {a} and {b}")
        assert summary.to == first.to
        assert summary.line.startswith("Failed password for root from 1.2.3.4")
        assert feeder.tick(7200) == []

    def test_a_window_with_nothing_suppressed_ends_silently(self, feeder: Feeder) -> None:
        """No summary for zero."""
        feeder.hit(0)
        assert feeder.tick(3600) == []
        assert feeder.policy.next_due() is None

    def test_other_keys_are_not_suppressed(self, feeder: Feeder) -> None:
        """Each address gets its own alert."""
        feeder.hit(0, "1.1.1.1")
        assert kinds(feeder.hit(1, "2.2.2.2")) == ["alert"]

    def test_after_the_window_the_key_alerts_again(self, feeder: Feeder) -> None:
        """A hit after the window (before any tick) closes it with its summary, then alerts."""
        feeder.hit(0)
        feeder.hit(10)
        out = feeder.hit(3601)
        assert kinds(out) == ["summary", "alert"]
        assert out[0].time == T0 + 3600

    def test_threshold_then_dedup(self, tmp_path: Path) -> None:
        """Threshold hits go into the alert; later ones into the summary; counts add up."""
        extra = ('threshold = { count = 5, within = "10m", by = "{ip}" }\n'
                 'dedup = { by = "{ip}", for = "1h" }')
        feeder = Feeder(Policy(make_config(tmp_path, rule(extra))))
        for i in range(50):
            feeder.hit(i * 10)
        feeder.finish(10_000)
        assert [(a.kind, a.count) for a in feeder.alerts] == [("alert", 5), ("summary", 45)]

    def test_summary_ids_are_distinct_per_window(self, feeder: Feeder) -> None:
        """Two windows of the same key: two summaries with different ids."""
        for base in (0, 4000):
            feeder.hit(base)
            feeder.hit(base + 1)
            feeder.tick(base + 3600)
        summaries = [a for a in feeder.alerts if a.kind == "summary"]
        assert len(summaries) == 2
        assert summaries[0].id != summaries[1].id


    @pytest.mark.parametrize(("by", "alerts", "key"), [
        ("{host}", 1, "web-1"),               # the same for every hit: worked out once
        ("{rule}:{severity}", 1, "ssh:warning"),
        ("{host} {ip}", 2, "web-1 1.1.1.1"),  # a built-in value and a field
        ("{user}@{ip}", 2, "root@1.1.1.1"),
        ("{ip}", 2, "1.1.1.1"),
    ])
    def test_keys_of_built_in_values_and_fields(self, tmp_path: Path, by: str, alerts: int,
                                                key: str) -> None:
        """Two addresses, three hits each: one key for all of them or one per address."""
        config = make_config(tmp_path, rule(f'dedup = {{ by = "{by}", for = "1h" }}'))
        feeder = Feeder(Policy(config))
        for i in range(6):
            feeder.hit(i, f"{1 + i % 2}.{1 + i % 2}.{1 + i % 2}.{1 + i % 2}")
        feeder.tick(3700)
        assert kinds(feeder.alerts) == ["alert"] * alerts + ["summary"] * alerts
        assert feeder.alerts[alerts].fields == {"key": key}
        assert sum(a.count for a in feeder.alerts) == 6


class TestBoundedKeys:
    """Live keys are capped per rule; the oldest go first and are counted."""

    def test_threshold_windows_are_evicted_oldest_first(self, tmp_path: Path) -> None:
        """Five addresses, room for three: two evicted, their hits counted below threshold."""
        th = 'threshold = { count = 3, within = "1h", by = "{ip}" }'
        feeder = Feeder(Policy(make_config(tmp_path, rule(th)), max_keys=3))
        for i in range(5):
            feeder.hit(i, f"10.0.0.{i}")
        status = feeder.policy.status()
        assert status["live_keys"]["threshold"] == 3
        assert status["evictions"] == 2
        assert feeder.policy.counters.below["ssh"] == 2
        # the survivors are the newest: 10.0.0.4 still counts toward its threshold
        feeder.hit(10, "10.0.0.4")
        assert kinds(feeder.hit(11, "10.0.0.4")) == ["alert"]
        assert feeder.hit(12, "10.0.0.0") == []  # evicted: starts from one again

    def test_evicted_dedup_window_sends_its_summary_early(self, tmp_path: Path) -> None:
        """Nothing suppressed is lost when its window is pushed out."""
        feeder = Feeder(Policy(make_config(tmp_path, rule('dedup = { by = "{ip}", for = "1h" }')),
                               max_keys=2))
        feeder.hit(0, "a")
        feeder.hit(1, "a")
        feeder.hit(2, "b")
        out = feeder.hit(3, "c")
        assert [(a.kind, a.count) for a in out] == [("summary", 1), ("alert", 1)]
        assert feeder.policy.status()["evictions"] == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5), st.sampled_from(
    ["hit", "hit", "hit", "resolve", "tick", "restart"])), max_size=40))
@example([(0, 0, "hit"), (0, 1, "hit"), (0, 0, "restart"), (0, 1, "hit")])
def test_the_hits_held_back_shown_are_those_of_the_open_windows(
        tmp_path: Path, steps: list[tuple[int, int, str]]) -> None:
    """``logwatch status``'s "hits suppressed so far", kept as windows count, end, are
    pushed out (room for 3), resolved and reloaded, is the sum over the open windows."""
    extra = ('dedup = { by = "{ip}", for = "2m" }\n'
             "resolve = 'Accepted password for (?P<user>\\S+) from (?P<ip>\\S+)'")
    config = make_config(tmp_path / str(len(list(tmp_path.iterdir()))), rule(extra))
    feeder = Feeder(Policy(config, max_keys=3))
    t = 0.0
    for ip, dt, what in steps:
        t += dt * 20
        if what == "tick":
            feeder.tick(t)
        elif what == "restart":
            feeder = TestState.restart(config, feeder)
        else:
            feeder.hit(t, f"10.0.0.{ip}", kind="resolve" if what == "resolve" else "match")
        windows = feeder.policy.suppressions.rows.values()
        assert feeder.policy.status()["suppressed_open"] == sum(
            held.suppressed for rows in windows for held in rows.values())


class TestStorm:
    """Above ``rate`` alerts per ``per`` for a destination: one digest per ``digest_every``."""

    @pytest.fixture
    def feeder(self, tmp_path: Path) -> Feeder:
        return Feeder(Policy(make_config(tmp_path, rule(), rate=5)))

    def test_storm_on_digests_and_off_with_every_hit_counted(self, feeder: Feeder) -> None:
        """50 alerts in 50s: 5 sent, a notice, a digest of 45, storm over when it calms."""
        for i in range(50):
            feeder.hit(i, f"10.0.0.{i % 7}")
        assert kinds(feeder.alerts) == ["alert"] * 5 + ["system"]
        assert "in progress" in feeder.alerts[-1].title
        assert feeder.policy.status()["storms"]["oncall"]["held_hits"] == 45
        assert feeder.tick(304) == []
        [digest] = feeder.tick(305)  # the storm began with the 6th alert, at 5s
        assert digest.kind == "digest"
        assert digest.count == 45
        assert digest.to == ("oncall",)
        assert "storm over" in digest.title
        lines = digest.message.splitlines()
        assert lines[0].startswith("45 alerts (45 hits) held back for oncall")
        assert len([x for x in lines if x.startswith("- ssh: SSH brute force from")]) == 3
        assert "and 4 more (24 alerts, 24 hits)" in digest.message
        assert feeder.policy.status()["storms"] == {}
        assert counted(feeder.alerts) == {"alert": 5, "digest": 45}
        assert kinds(feeder.hit(400)) == ["alert"]

    def test_storm_lasts_while_the_rate_stays_high(self, feeder: Feeder) -> None:
        """A digest every 5m while over the rate; the last one says it is over."""
        for i in range(900):  # one alert a second for 15 minutes
            feeder.tick(i)
            feeder.hit(i, f"10.0.{i % 3}.1")
        feeder.finish(2000)
        digests = [a for a in feeder.alerts if a.kind == "digest"]
        assert [d.time - T0 for d in digests] == [305.0, 605.0, 905.0]
        # at 905 the last minute still saw 54 alerts: over at the next digest time
        assert ["in progress" in d.title for d in digests] == [True, True, True]
        assert feeder.alerts[-1].kind == "system"
        assert feeder.alerts[-1].title == "Alert storm on web-1: over"
        assert feeder.alerts[-1].time == T0 + 1205
        assert counted(feeder.alerts) == {"alert": 5, "digest": 895}
        assert len({d.id for d in digests}) == 3

    def test_the_rate_saved_before_a_restart_still_counts(self, tmp_path: Path) -> None:
        """4 alerts, restart, 2 more within the minute: the 6th starts the storm; the
        restored rate forgets its old seconds as they leave the window."""
        config = make_config(tmp_path, rule(), rate=5)
        feeder = Feeder(Policy(config))
        for i in range(4):
            feeder.hit(i, f"10.0.0.{i}")
        state = State(config.settings.state_dir)
        with state.transaction() as conn:
            feeder.policy.save(conn)
        again = Feeder(Policy(config))
        with state.transaction() as conn:
            again.policy.load(conn)
        state.close()
        again.n = feeder.n
        assert kinds(again.hit(10)) == ["alert"]
        assert kinds(again.hit(11)) == ["system"]  # the 6th within the minute: held
        calm = Feeder(Policy(config))
        with State(config.settings.state_dir).transaction() as conn:
            calm.policy.load(conn)  # the 4 saved ones, then 2 once they are a minute old
        assert [kinds(calm.hit(t)) for t in (70, 71)] == [["alert"], ["alert"]]

    def test_storm_is_per_destination(self, tmp_path: Path) -> None:
        """A flood to one destination leaves the other's alerts alone."""
        rules = rule(rid="loud", to='["oncall"]') + rule(rid="calm", to='["ops"]')
        feeder = Feeder(Policy(make_config(tmp_path, rules, rate=5)))
        for i in range(20):
            feeder.hit(i, rule="loud")
        assert kinds(feeder.hit(21, rule="calm")) == ["alert"]
        assert set(feeder.policy.status()["storms"]) == {"oncall"}

    def test_a_destination_in_a_storm_is_split_off(self, tmp_path: Path) -> None:
        """A rule sending to both: the stormy one holds, the calm one still gets the alert."""
        rules = rule(rid="loud", to='["oncall"]') + rule(rid="both", to='["oncall", "ops"]')
        feeder = Feeder(Policy(make_config(tmp_path, rules, rate=5)))
        for i in range(10):
            feeder.hit(i, rule="loud")
        [alert] = feeder.hit(11, rule="both")
        assert alert.to == ("ops",)

    def test_alerts_a_destination_skips_do_not_make_a_storm(self, tmp_path: Path) -> None:
        """Info alerts to a warning-and-above channel are not messages there: no storm."""
        rules = ('[destinations.pager]\ntype = "console"\nmin_severity = "critical"\n'
                 + rule('severity = "info"', to='["pager"]'))
        feeder = Feeder(Policy(make_config(tmp_path, rules, rate=5)))
        for i in range(20):
            assert kinds(feeder.hit(i)) == ["alert"]
        assert feeder.policy.status()["storms"] == {}

    def test_summaries_during_a_storm_go_into_the_digest(self, tmp_path: Path) -> None:
        """Dedup and storm together: every hit is in an alert, a summary or a digest."""
        config = make_config(tmp_path, rule('dedup = { by = "{ip}", for = "2m" }'), rate=5)
        feeder = Feeder(Policy(config))
        for i in range(600):
            feeder.tick(i)
            feeder.hit(i, f"10.0.0.{i % 40}")
        feeder.finish(5000)
        got = counted(feeder.alerts)
        assert got["digest"] > 0
        assert got["alert"] + got["summary"] + got["digest"] == 600


class TestResolve:
    """``resolve`` and ``quiet``: a follow-up for a key that alerted."""

    def test_resolve_line_closes_the_key(self, tmp_path: Path) -> None:
        """A resolve hit sends the dedup summary, then "resolved"; the next failure alerts."""
        extra = 'dedup = { by = "{ip}", for = "1h" }\nresolve = "Accepted password"'
        feeder = Feeder(Policy(make_config(tmp_path, rule(extra))))
        feeder.hit(0)
        feeder.hit(1)
        assert feeder.hit(2, "9.9.9.9", kind="resolve") == []  # never alerted
        out = feeder.hit(3, kind="resolve")
        assert kinds(out) == ["summary", "resolved"]
        assert out[1].title == "Resolved: SSH brute force from 1.2.3.4"
        assert out[1].message.startswith("resolved by: Failed password")
        assert feeder.hit(4, kind="resolve") == []
        assert kinds(feeder.hit(5)) == ["alert"]

    def test_quiet_resolves_after_silence(self, tmp_path: Path) -> None:
        """``quiet = "10m"``: resolved ten minutes after the key's last hit, by the timer."""
        feeder = Feeder(Policy(make_config(tmp_path, rule('quiet = "10m"'))))
        feeder.hit(0)
        feeder.hit(300)
        assert feeder.tick(899) == []
        assert feeder.policy.next_due() == T0 + 900
        [resolved] = feeder.tick(900)
        assert resolved.kind == "resolved"
        assert resolved.time == T0 + 900
        assert "quiet for 10m" in resolved.message


class TestState:
    """Windows and counters survive a restart, through a real SQLite state database."""

    @pytest.fixture
    def config(self, tmp_path: Path) -> Config:
        extra = ('threshold = { count = 5, within = "10m", by = "{ip}" }\n'
                 'dedup = { by = "{ip}", for = "1h" }')
        return make_config(tmp_path, rule(extra), rate=5)

    @staticmethod
    def restart(config: Config, feeder: Feeder) -> Feeder:
        """Save, close, open the database again, load into a new policy."""
        state = State(config.settings.state_dir)
        with state.transaction() as conn:
            feeder.policy.save(conn)
        state.close()
        state = State(config.settings.state_dir)
        policy = Policy(config)
        with state.transaction() as conn:
            policy.load(conn)
        state.close()
        again = Feeder(policy)
        again.n = feeder.n
        return again

    def test_restart_in_the_middle_of_a_threshold_window(self, config: Config) -> None:
        """Three hits, restart, two more: the alert fires, counting all five."""
        feeder = Feeder(Policy(config))
        for i in range(3):
            feeder.hit(i)
        feeder = self.restart(config, feeder)
        feeder.hit(3)
        [alert] = feeder.hit(4)
        assert alert.count == 5

    def test_restart_during_an_attack_neither_realerts_nor_forgets(self, config: Config) -> None:
        """Alert, 10 suppressed, restart, 10 more: no new alert, one summary of 20."""
        feeder = Feeder(Policy(config))
        for i in range(15):
            feeder.hit(i)
        feeder = self.restart(config, feeder)
        for i in range(15, 25):
            assert feeder.hit(i) == []
        assert feeder.tick(3603) == []
        [summary] = feeder.tick(3604)  # the window opened with the 5th hit, at 4s
        assert summary.count == 20

    def test_storm_survives_a_restart(self, config: Config) -> None:
        """A storm in progress goes on after a restart, with what it held."""
        feeder = Feeder(Policy(config))
        for i in range(40):  # 8 addresses x 5 hits: 8 alerts, over the rate of 5
            feeder.hit(i, f"10.0.0.{i // 5}")
        feeder = self.restart(config, feeder)
        assert feeder.policy.status()["storms"]["oncall"]["held_hits"] == 15
        [digest] = feeder.tick(400)
        assert digest.count == 15

    def test_a_replay_from_saved_state_derives_the_same_ids(self, config: Config) -> None:
        """Crash after feed, before commit: the same hits from the old state, the same alerts."""
        feeder = Feeder(Policy(config))
        for i in range(3):
            feeder.hit(i)
        first = self.restart(config, feeder)
        second = self.restart(config, feeder)
        for f in (first, second):
            for i in range(3, 60):
                f.hit(i, f"10.0.0.{i % 2}")
            f.tick(4000)
        assert [a.id for a in first.alerts] == [a.id for a in second.alerts]
        assert len(first.alerts) > 3

    def test_save_writes_only_what_changed(self, config: Config) -> None:
        """A second save with nothing new issues no statement; a hit rewrites its own rows."""
        feeder = Feeder(Policy(config))
        feeder.hit(0, "1.1.1.1")
        feeder.hit(0, "2.2.2.2")
        state = State(config.settings.state_dir)
        with state.transaction() as conn, traced_after_a_save(feeder, conn) as statements:
            feeder.policy.save(conn)
            assert statements == []
            feeder.hit(1, "2.2.2.2")
            feeder.policy.save(conn)
        written = [s for s in statements if "INSERT" in s]
        assert len(written) == 2  # the window of 2.2.2.2 and the counters
        with state.transaction() as conn:
            rows = get_values(conn, NS)
            assert saved(rows, "T", "ssh", "2.2.2.2") == [T0, T0 + 1]
            assert "live keys" in get_values(conn, STATUS_NS)
        state.close()

    def test_a_row_born_and_dropped_between_two_saves_costs_no_statement(
            self, config: Config) -> None:
        """A window opened and fired between two saves was never written: no DELETE for it
        (one that was saved before is deleted)."""
        feeder = Feeder(Policy(config))
        feeder.hit(0, "1.1.1.1")
        state = State(config.settings.state_dir)
        with state.transaction() as conn, traced_after_a_save(feeder, conn) as statements:
            for t in range(1, 5):
                feeder.hit(t, "2.2.2.2")
            [alert] = feeder.hit(5, "2.2.2.2")  # the 5th: its window's row goes
            feeder.policy.save(conn)
            assert not [s for s in statements if "DELETE" in s]
            for t in range(6, 10):  # the window saved before fires too: its row is deleted
                feeder.hit(t, "1.1.1.1")
            feeder.policy.save(conn)
            rows = get_values(conn, NS)
        state.close()
        assert len([s for s in statements if "DELETE" in s]) == 1
        assert saved_keys(rows, "T") == [] and len(saved_keys(rows, "D")) == 2
        assert alert.count == 5

    def test_a_save_rolled_back_is_written_again_by_the_next(self, config: Config) -> None:
        """A commit that failed (disk full) after the policy's save: ``save_failed`` makes
        the next save write those rows again, as they are then, with what changed since."""
        feeder, twin = Feeder(Policy(config)), Feeder(Policy(config))
        for f in (feeder, twin):
            for i in range(7):  # windows of two addresses, 4 and 3 hits
                f.hit(i, f"10.0.0.{i % 2}")
        state = State(config.settings.state_dir)
        conn = state.conn
        conn.execute("BEGIN IMMEDIATE")
        feeder.policy.save(conn)
        conn.execute("ROLLBACK")  # the COMMIT failed
        feeder.policy.save_failed()
        for f in (feeder, twin):
            f.hit(8, "10.0.0.0")  # the 5th: an alert, a dedup window instead of the window
            f.hit(9, "10.0.0.3")
        with state.transaction() as conn:
            assert get_values(conn, NS) == {}
            feeder.policy.save(conn)
            rows = get_values(conn, NS)
        state.close()
        other = State(config.settings.state_dir.parent / "twin")
        with other.transaction() as conn:
            twin.policy.save(conn)
            assert rows == get_values(conn, NS)
        other.close()
        assert len(saved_keys(rows, "T")) == 2 and len(saved_keys(rows, "D")) == 1

    def test_rows_are_stored_in_the_order_they_were_born(self, config: Config) -> None:
        """The kv table's order is the rows' creation order, not their addresses: what a
        commit changes sits together at the end of the tree (few pages to write)."""
        feeder = Feeder(Policy(config))
        for t, ip in enumerate(["9.9.9.9", "1.1.1.1", "5.5.5.5"]):
            feeder.hit(t, ip)
        state = State(config.settings.state_dir)
        with state.transaction() as conn:
            feeder.policy.save(conn)
            rows = get_values(conn, NS)
        state.close()
        assert saved_keys(rows, "T") == [("ssh", "9.9.9.9"), ("ssh", "1.1.1.1"),
                                         ("ssh", "5.5.5.5")]

    def test_a_row_born_again_gets_a_new_place_and_the_old_one_goes(
            self, config: Config) -> None:
        """A window that fired (its row deleted) and opens again is a new row."""
        feeder = Feeder(Policy(config))
        state = State(config.settings.state_dir)
        feeder.hit(0, "1.1.1.1")
        with state.transaction() as conn:
            feeder.policy.save(conn)
            before = set(get_values(conn, NS))
        for t in range(1, 5):  # the 5th hit fires: the window's row is deleted
            feeder.hit(t, "1.1.1.1")
        feeder.finish(7200)  # the dedup window ends too
        feeder.hit(7300, "1.1.1.1")  # a new window
        with state.transaction() as conn:
            feeder.policy.save(conn)
            rows = get_values(conn, NS)
        state.close()
        assert saved(rows, "T", "ssh", "1.1.1.1") == [T0 + 7300]
        assert not {k for k in before if k.startswith("T/")} & set(rows)

    def test_rows_saved_by_earlier_versions_are_loaded_and_rewritten(
            self, config: Config) -> None:
        """``t/rule/key`` rows (before births) still count, and are moved to the new form."""
        state = State(config.settings.state_dir)
        with state.transaction() as conn:
            put_value(conn, NS, "t/ssh/1.1.1.1", [T0, T0 + 1, T0 + 2, T0 + 3])
        policy = Policy(config)
        with state.transaction() as conn:
            policy.load(conn)
        feeder = Feeder(policy)
        assert [a.count for a in feeder.hit(4, "1.1.1.1")] == [5]  # with the 4 saved hits
        feeder.hit(5, "2.2.2.2")
        with state.transaction() as conn:
            policy.save(conn)
            rows = get_values(conn, NS)
        state.close()
        assert not [k for k in rows if k.startswith("t/")]
        assert saved(rows, "T", "ssh", "2.2.2.2") == [T0 + 5]
        assert saved(rows, "D", "ssh", "1.1.1.1") is not None  # the dedup window it opened

    def test_status_lines_can_wait_for_a_later_save(self, config: Config) -> None:
        """``save(status=False)`` keeps the windows exact and leaves the status lines for later."""
        feeder = Feeder(Policy(config))
        feeder.hit(0, "1.1.1.1")
        state = State(config.settings.state_dir)
        with state.transaction() as conn:
            feeder.policy.save(conn, status=False)
            assert saved(get_values(conn, NS), "T", "ssh", "1.1.1.1") == [T0]
            assert get_values(conn, STATUS_NS) == {}
            assert feeder.policy.status_stale
            feeder.policy.save_status(conn)
            assert "1 threshold" in get_values(conn, STATUS_NS)["live keys"]
            assert not feeder.policy.status_stale
        state.close()

    def test_unreadable_rows_are_deleted_at_the_next_save(self, config: Config) -> None:
        """A damaged row (a bad kv key, a value of the wrong shape) is dropped with a word at
        load and deleted by the next save, which used to fail on it at every commit."""
        state = State(config.settings.state_dir)
        with state.transaction() as conn:
            put_value(conn, NS, "T/zz", [T0])
            put_value(conn, NS, "D/000000000001/ssh/1.1.1.1", {"nonsense": 1})
            # a field that is ours, not the row's: taken in, it began the row's saved text
            put_value(conn, NS, "D/000000000002/ssh/2.2.2.2", {
                "opener": "a", "title": "t", "source": "s", "until": T0 + 60, "head": "x"})
            # the right shape, a wrong type: a null source would end in a summary alert
            put_value(conn, NS, "D/000000000003/ssh/3.3.3.3", {
                "opener": "a", "title": "t", "source": None, "until": T0 + 60})
            put_value(conn, NS, "R/000000000004/ssh/4.4.4.4", {
                "opener": "a", "title": "t", "source": "s", "last": "yesterday"})
            put_value(conn, NS, "T/000000000005/ssh/5.5.5.5", [T0, "later"])
            # a window without a hit (never saved so): its timer looked at its last hit
            put_value(conn, NS, "T/000000000006/ssh/6.6.6.6", [])
        policy = Policy(config)
        with state.transaction() as conn:
            policy.load(conn)
            assert policy.tick(T0 + 10_000) == []
            policy.save(conn)
            assert get_values(conn, NS) == {}
        state.close()

    def test_state_of_a_removed_rule_is_dropped(self, config: Config, tmp_path: Path) -> None:
        """After a reload without the rule, its rows are deleted on the next save."""
        feeder = Feeder(Policy(config))
        feeder.hit(0)
        state = State(config.settings.state_dir)
        with state.transaction() as conn:
            feeder.policy.save(conn)
        other = make_config(tmp_path, rule(rid="other"))
        policy = Policy(other)
        with state.transaction() as conn:
            policy.load(conn)
            policy.save(conn)
            assert not [k for k in get_values(conn, NS) if "/ssh/" in k]
        state.close()


class TestAccounting:
    """Whatever arrives, once every window has ended, every hit is in exactly one count."""

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                      HealthCheck.function_scoped_fixture])
    @given(
        gaps=st.lists(st.tuples(st.floats(0, 120), st.integers(0, 6)), min_size=1, max_size=120),
        count=st.integers(1, 4),
        dedup=st.sampled_from(["", "30s", "5m"]),
        rate=st.integers(2, 10),
    )
    def test_hits_add_up(self, tmp_path: Path, gaps: list[tuple[float, int]], count: int,
                         dedup: str, rate: int) -> None:
        """hits == in alerts + in summaries + in digests + below threshold."""
        extra = f'threshold = {{ count = {count}, within = "2m", by = "{{ip}}" }}\n'
        if dedup:
            extra += f'dedup = {{ by = "{{ip}}", for = "{dedup}" }}\n'
        feeder = Feeder(Policy(make_config(tmp_path, rule(extra), rate=rate), max_keys=4))
        t = 0.0
        for gap, ip in gaps:
            t += gap
            while (due := feeder.policy.next_due()) is not None and due <= T0 + t:
                feeder.alerts += feeder.policy.tick(due)
            feeder.hit(t, f"10.0.0.{ip}")
        feeder.finish(t + 10_000)
        got = counted(feeder.alerts)
        below = feeder.policy.counters.below["ssh"]
        assert got["alert"] + got["summary"] + got["digest"] + below == len(gaps)
        assert feeder.policy.pending_hits == 0
        assert len({a.id for a in feeder.alerts}) == len(feeder.alerts)


def test_status_for_logwatch_status(tmp_path: Path) -> None:
    """``status()`` is plain data: storms, live keys, evictions."""
    feeder = Feeder(Policy(make_config(tmp_path, rule(), rate=1)))
    feeder.hit(0)
    feeder.hit(1)
    status = feeder.policy.status()
    assert set(status["storms"]) == {"oncall"}
    assert status["storms"]["oncall"]["held_hits"] == 1
    assert status["evictions"] == 0
    assert status["hits"] == 2


def test_the_daemon_sends_the_summary_from_its_timer(tmp_path: Path) -> None:
    """``logwatch run`` for real: one alert, then, with no further line, the summary."""
    from tests.helpers import Daemon

    log = write(tmp_path / "app.log", "")
    config = write(tmp_path / "logwatch.toml", f"""
[logwatch]
state_dir = "{tmp_path / 'state'}"
hostname = "web-1"
poll_interval = "100ms"

[sources.app]
files = ["{log}"]

[[rules]]
id = "disk"
match = 'I/O error on (?P<device>\\S+)'
title = "disk errors on {{device}}"
dedup = {{ by = "{{device}}", for = "2s" }}
""")
    with Daemon(config, "--dry-run") as daemon:
        daemon.wait_stderr("sends to console")
        with log.open("a") as out:
            out.writelines(f"kernel: I/O error on sda sector {i}\n" for i in range(5))
        daemon.wait_stdout("disk errors on sda")
        text = daemon.wait_stdout("4 more 'disk errors on sda' suppressed")
        heads = [x for x in text.splitlines() if x.startswith("[WARNING]")]
        assert len(heads) == 2  # the alert and the summary, nothing else
        assert heads[0].endswith(" disk errors on sda")
        assert daemon.stop() == 0


@pytest.mark.parametrize(("title", "message", "expected"), [
    # the rule's own fields only, the host written in once: rendered from the hit's fields
    ("{user}", "{user} from {ip} on {host}", ("root", "root from 1.1.1.1 on web-1")),
    # built-in values over fields of the same names, per alert or per rule
    ("{host} {rule} {severity}", "{user} {within}|{line}|{source}|{count}",
     ("web-1 ssh warning", "root |Failed password for root from 1.1.1.1 port 22|auth|1")),
])
def test_an_alerts_texts_take_the_built_in_values_over_fields_so_named(
        tmp_path: Path, title: str, message: str, expected: tuple[str, str]) -> None:
    """A hit whose fields are named as built-in values (a pattern may name a group
    ``host``): the alert says the built-in value, whichever way its texts are rendered."""
    text = rule().replace('"SSH brute force from {ip}"', f'"{title}"').replace(
        '"{count} failed passwords from {ip} within {within} ({first} to {last})"',
        f'"{message}"')
    policy = Policy(make_config(tmp_path, text))
    fields = {"user": "root", "ip": "1.1.1.1", "host": "evil", "rule": "x", "severity": "x",
              "within": "x", "line": "x", "source": "x", "count": "x"}
    line = LogLine("Failed password for root from 1.1.1.1 port 22", "auth", "/var/log/auth.log",
                   "auth@1", T0)
    [alert] = policy.feed(Hit("ssh", fields, line))
    assert (alert.title, alert.message) == expected
