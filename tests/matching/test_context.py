"""Events that span lines: a rule's hit takes fields from an earlier line sharing a key.

The same answer in the matcher's memory, ``logwatch test --json`` (one process and
``-j N``), ``test --alerts``, and across a real SQLite save and load.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logwatch.commands import parallel
from logwatch.commands.replay import replay
from logwatch.commands.simulate import simulate
from logwatch.config import Config, load_config
from logwatch.errors import ConfigError
from logwatch.matching import Matcher
from logwatch.matching.context import ContextMemory, newlines
from logwatch.state import State
from tests.helpers import logwatch, write

RULE = """
[[rules]]
id = "too-many"
match = 'sshd\\[(?P<pid>\\d+)\\]: Disconnecting: Too many authentication failures(?: for (?P<user>\\S+))?'
context = {{ key = "{{pid}}", from = 'sshd\\[(?P<pid>\\d+)\\]: Connection from (?P<ip>[\\d.]+) port (?P<port>\\d+)', within = {within}, keep = {keep}{extra} }}
title = "out of attempts: {{ip}}"
"""


def config(tmp_path: Path, *, within: int = 200, keep: int = 10_000, extra: str = "",
           head: str = "") -> Config:
    text = (f'[logwatch]\nstate_dir = "{tmp_path}/state"\n{head}\n'
            + RULE.format(within=within, keep=keep, extra=extra))
    return load_config(write(tmp_path / "logwatch.toml", text), environ={})


def connection(pid: int, ip: str) -> str:
    return f"Nov 23 21:50:10 h sshd[{pid}]: Connection from {ip} port 4{pid % 1000:03d} on 10.0.0.1 port 22"


def used_up(pid: int, user: str = "root") -> str:
    return f"Nov 23 21:50:19 h sshd[{pid}]: Disconnecting: Too many authentication failures for {user} [preauth]"


def hits(cfg: Config, *chunks: str, memory: ContextMemory | None = None) -> list[dict[str, str]]:
    """The fields of every hit, the chunks scanned in order through one memory."""
    matcher = Matcher(cfg.rules)
    memory = ContextMemory(cfg.rules, "auth") if memory is None else memory
    out = []
    for text in chunks:
        data = text.encode()
        out += [dict(fields) for _, fields in memory.hits(matcher.scan(data), data)]
    return out


def test_a_hit_takes_the_fields_of_the_earlier_line_with_its_key(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    lines = [connection(101, "192.0.2.1"), connection(102, "192.0.2.2"), "noise\n" * 3,
             used_up(102, "admin"), used_up(101)]
    got = hits(cfg, "\n".join(lines) + "\n")
    assert got == [{"pid": "102", "user": "admin", "ip": "192.0.2.2", "port": "4102"},
                   {"pid": "101", "user": "root", "ip": "192.0.2.1", "port": "4101"}]


def test_context_spans_chunks(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    got = hits(cfg, connection(7, "198.51.100.7") + "\n", "x\n", used_up(7) + "\n")
    assert got[0]["ip"] == "198.51.100.7"


def test_own_fields_win(tmp_path: Path) -> None:
    """The hit's own non-empty groups are kept; an empty one takes the earlier line's."""
    text = (f'[logwatch]\nstate_dir = "{tmp_path}/s"\n\n[[rules]]\nid = "r"\n'
            "match = 'end (?P<id>\\d+)(?: user=(?P<user>\\w+))?'\n"
            "context = { key = '{id}', from = 'start (?P<id>\\d+) user=(?P<user>\\w+) "
            "ip=(?P<ip>\\S+)' }\n")
    cfg = load_config(write(tmp_path / "c.toml", text), environ={})
    got = hits(cfg, "start 1 user=alice ip=192.0.2.1\nend 1 user=bob\nend 1\n")
    assert got == [{"id": "1", "user": "bob", "ip": "192.0.2.1"},
                   {"id": "1", "user": "alice", "ip": "192.0.2.1"}]


def test_within_counts_lines_of_the_source(tmp_path: Path) -> None:
    cfg = config(tmp_path, within=3)
    near = "\n".join([connection(9, "192.0.2.9"), "a", "b", used_up(9)]) + "\n"
    far = "\n".join([connection(9, "192.0.2.9"), "a", "b", "c", used_up(9)]) + "\n"
    assert hits(cfg, near)[0]["ip"] == "192.0.2.9"
    assert "ip" not in hits(cfg, far)[0]  # not required: the hit stays, without the field


def test_keep_bounds_the_keys(tmp_path: Path) -> None:
    cfg = config(tmp_path, keep=2)
    memory = ContextMemory(cfg.rules, "auth")
    text = "\n".join(connection(pid, f"192.0.2.{pid}") for pid in (1, 2, 3)) + "\n" + used_up(1)
    got = hits(cfg, text + "\n", memory=memory)
    assert len(memory) == 2
    assert "ip" not in got[0]  # pid 1 was the oldest: forgotten


def test_require_drops_a_hit_without_its_earlier_line(tmp_path: Path) -> None:
    cfg = config(tmp_path, extra=", require = true")
    memory = ContextMemory(cfg.rules, "auth")
    text = used_up(404) + "\n" + connection(5, "192.0.2.5") + "\n" + used_up(5) + "\n"
    assert [h["ip"] for h in hits(cfg, text, memory=memory)] == ["192.0.2.5"]
    assert memory.unlinked == {"too-many": 1}


def test_saved_and_loaded_with_real_sqlite(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    state = State(tmp_path / "state")
    first = ContextMemory(cfg.rules, "auth")
    hits(cfg, connection(11, "192.0.2.11") + "\nfiller\n", memory=first)
    with state.transaction() as conn:
        first.save(conn)
    again = ContextMemory(cfg.rules, "auth")
    with state.transaction() as conn:
        again.load(conn)
    assert again.lines == 2
    assert hits(cfg, used_up(11) + "\n", memory=again)[0]["ip"] == "192.0.2.11"
    other = ContextMemory(cfg.rules, "mail")  # another source's lines lend nothing
    with state.transaction() as conn:
        other.load(conn)
    assert len(other) == 0


def test_context_lines_are_no_hits(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    log = write(tmp_path / "auth.log", "\n".join(
        [connection(1, "192.0.2.1"), connection(2, "192.0.2.2"), used_up(2)]) + "\n")
    result = replay(cfg, [log], io.StringIO())
    assert result.hits == {"too-many": 1}


def test_logwatch_test_json_shows_the_linked_fields(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    log = write(tmp_path / "auth.log", "\n".join(
        [connection(1, "192.0.2.1"), "x", used_up(1)]) + "\n")
    done = logwatch("test", "-c", str(cfg.path), "--json", str(log))
    assert done.returncode == 0, done.stderr
    assert [json.loads(line) for line in done.stdout.splitlines()] == [
        {"rule": "too-many", "file": str(log), "line_no": 3,
         "fields": {"pid": "1", "user": "root", "ip": "192.0.2.1", "port": "4001"}}]


def test_parallel_segments_see_earlier_lines(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """-j 3 with segments far smaller than the file: every hit has the ip, as with -j 1."""
    monkeypatch.setattr(parallel, "SEGMENT", 4096)
    cfg = config(tmp_path, within=50, extra=", require = true")
    lines = []
    for pid in range(1, 2000):
        lines += [connection(pid, f"10.{pid // 250}.{pid % 250}.1"), f"filler {pid}",
                  used_up(pid)]
    lines += [used_up(99999)]  # no earlier line: no hit
    log = write(tmp_path / "auth.log", "\n".join(lines) + "\n")
    outs = []
    for jobs in (1, 3):
        out = io.StringIO()
        result = replay(cfg, [log], out, as_json=True, jobs=jobs)
        assert result.hits == {"too-many": 1999}
        outs.append(out.getvalue())
        counted = replay(cfg, [log], io.StringIO(), jobs=jobs)  # counts only, no --json
        assert counted.hits == {"too-many": 1999}
    assert outs[0] == outs[1]
    assert all(json.loads(line)["fields"]["ip"] for line in outs[0].splitlines())


def test_simulated_alerts_carry_the_linked_fields(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    log = write(tmp_path / "auth.log", "\n".join([connection(3, "203.0.113.3"), used_up(3)]) + "\n")
    result = simulate(cfg, [log], io.StringIO(), now=1.7e9)
    assert [a.title for a in result.alerts if a.kind == "alert"] == ["out of attempts: 203.0.113.3"]


@pytest.mark.parametrize(("context", "message"), [
    ('{ from = "x" }', 'context: key: missing'),
    ('{ key = "{pid}" }', "context: from: missing"),
    ('{ key = "{ip}", from = "(?P<ip>x)" }', "context: key: {ip} is not a named group of match"),
    ('{ key = "{pid}", from = "x" }', "context: key: {pid} is not a named group of from"),
    ('{ key = "{pid}", from = "(?P<pid>x)", within = 0 }', "context: within: expected a whole"),
    ('{ key = "{pid}", from = "(?P<pid>x)", keep = 2000000 }', "context: keep: expected a whole"),
    ('{ key = "{pid}", from = "(?P<pid>x", within = 5 }', "context: from: bad regex"),
    ('{ key = "{pid}", from = "(?P<pid>x)", after = 5 }', "context: unknown key 'after'"),
    ('"{pid}"', "context: expected {"),
])
def test_bad_context_is_one_clear_line(tmp_path: Path, context: str, message: str) -> None:
    text = (f'[logwatch]\nstate_dir = "{tmp_path}/s"\n\n[[rules]]\nid = "r"\n'
            f'match = "(?P<pid>\\\\d+)"\ncontext = {context}\n')
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path / "c.toml", text), environ={})
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith('c.toml:7: rules[0] "r": '), info.value.problems
    assert message in info.value.problems[0]


def test_templates_may_use_the_context_fields(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    assert "ip" in cfg.rules[0].groups


@pytest.mark.parametrize("chunk", [64, 300, 4096, 1 << 20])
def test_counting_skims_to_the_same_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           chunk: int) -> None:
    """Counting remembers only the lines a hit can reach: the counts are those of --json."""
    monkeypatch.setattr("logwatch.commands.replay.CHUNK_SIZE", chunk)
    cfg = config(tmp_path, within=6, keep=3, extra=", require = true")
    rng = random.Random(16)
    lines = []
    for _ in range(3000):
        pid = rng.randrange(12)
        lines.append(rng.choice([connection(pid, f"192.0.2.{pid}"), used_up(pid), "filler"]))
    log = write(tmp_path / "auth.log", "\n".join(lines) + "\n")
    out = io.StringIO()
    listed = replay(cfg, [log], out, as_json=True)
    counted = replay(cfg, [log], io.StringIO())
    assert counted.hits == listed.hits
    assert 0 < listed.hits["too-many"] == len(out.getvalue().splitlines())
    assert listed.hits["too-many"] < sum(line.count("Disconnecting") for line in lines)


@pytest.mark.parametrize("chunk", [1, 7, 40, 400])
def test_line_numbers_counted_forward_or_back_agree(tmp_path: Path, chunk: int) -> None:
    """The daemon's reads (line count unknown: counted forward, once) link and number lines
    as the counting path's (count given: back from the end), over reads of any size."""
    cfg = config(tmp_path, within=5, keep=4, extra=", require = true")
    rng = random.Random(chunk)
    lines = [rng.choice([connection(pid, f"192.0.2.{pid}"), used_up(pid), "filler " * 30])
             for pid in (rng.randrange(9) for _ in range(1200))]
    reads = reads_of(lines, chunk)
    matcher = Matcher(cfg.rules)
    forward, back = ContextMemory(cfg.rules, "auth"), ContextMemory(cfg.rules, "auth")
    for data in reads:
        got = [(m.start, dict(f)) for m, f in forward.hits(matcher.scan(data), data)]
        assert got == [(m.start, dict(f)) for m, f in
                       back.hits(matcher.scan(data), data, data.count(b"\n"))]
        assert forward.lines == back.lines and forward.memory == back.memory
    assert forward.lines == len(lines) and 0 < forward.unlinked["too-many"] == back.unlinked[
        "too-many"]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=5000).map(lambda b: b.replace(b"\x00", b"\n")),
       cut=st.tuples(st.integers(0, 5000), st.integers(0, 5000)))
def test_newlines_is_bytes_count(data: bytes, cut: tuple[int, int]) -> None:
    start, end = sorted(min(c, len(data)) for c in cut)
    assert newlines(data, start, end) == data.count(b"\n", start, end)
    assert newlines(data, 0, len(data)) == data.count(b"\n")


@pytest.mark.parametrize("chunk", [1, 7, 40, 400])
def test_following_leaves_out_only_context_lines_no_hit_can_reach(tmp_path: Path,
                                                                  chunk: int) -> None:
    """The daemon's path (:meth:`ContextMemory.follow`) gives every rule's hits and fields as
    :meth:`ContextMemory.hits` does over reads of any size, ``require`` and ``keep``
    included, while remembering fewer lines (those older than ``within`` when read)."""
    other = '\n[[rules]]\nid = "filler"\nmatch = \'filler (?P<n>\\d+)\'\ntitle = "f"\n'
    cfg = config(tmp_path, within=5, keep=4, extra=", require = true", head=other)
    rng = random.Random(chunk)
    lines = [rng.choice([connection(pid, f"192.0.2.{pid}"), connection(pid, f"192.0.2.{pid}"),
                         used_up(pid), f"filler {pid}"])
             for pid in (rng.randrange(9) for _ in range(1500))]
    reads = reads_of(lines, chunk)
    matcher = Matcher(cfg.rules)
    walked, followed = ContextMemory(cfg.rules, "auth"), ContextMemory(cfg.rules, "auth")
    remembered = {walked: 0, followed: 0}
    for memory in remembered:
        def counted(*args: Any, memory: ContextMemory = memory,
                    remember: Callable[..., None] = memory._remember) -> None:
            remembered[memory] += 1
            remember(*args)
        memory._remember = counted  # type: ignore[method-assign]
    for data in reads:
        count = data.count(b"\n")
        expected = [(m.start, m.text, m.rule.id, m.kind, dict(f)) for m, f in
                    walked.hits(matcher.find(data, groups=True), data, count)]
        assert expected == [(start, text, rule, kind, dict(f)) for start, text, rule, kind, f in
                            followed.follow(matcher.find(data, groups=True), data, count)]
    assert walked.unlinked == followed.unlinked and walked.unlinked["too-many"] > 0
    assert walked.lines == followed.lines == len(lines)
    if chunk > 5:  # reads longer than ``within``: some lines are left out
        assert remembered[followed] < remembered[walked]


def reads_of(lines: list[str], chunk: int) -> list[bytes]:
    """``lines`` as reads of ``chunk`` lines each."""
    return ["".join(f"{line}\n" for line in lines[i:i + chunk]).encode()
            for i in range(0, len(lines), chunk)]


def walk_and_follow(walked: ContextMemory, followed: ContextMemory, matcher: Matcher,
                    data: bytes) -> list[tuple[int, str, str, str, dict[str, str]]]:
    """The hits of one read by :meth:`ContextMemory.follow`, checked against what
    :meth:`ContextMemory.hits` gives (each memory fed every read, in order)."""
    count = data.count(b"\n")
    expected = [(m.start, m.text, m.rule.id, m.kind, dict(f)) for m, f in
                walked.hits(matcher.find(data, groups=True), data, count)]
    got = [(start, text, rule, kind, dict(f)) for start, text, rule, kind, f in
           followed.follow(matcher.find(data, groups=True), data, count)]
    assert expected == got
    assert walked.lines == followed.lines
    return got


def recent(memory: ContextMemory, within: int) -> dict[str, dict[str, Any]]:
    """What ``memory`` remembers that a hit on its next line could still reach."""
    return {rule_id: {key: entry for key, entry in rows.items()
                      if memory.lines - entry[0] <= within}
            for rule_id, rows in memory.memory.items()}


@pytest.mark.parametrize(("chunk", "within"), [(3, 20), (50, 20), (300, 20), (300, 200)])
def test_following_mostly_context_lines_numbers_them_as_the_walk_does(
        tmp_path: Path, chunk: int, within: int) -> None:
    """A busy sshd's reads: many ``Connection from`` lines, a rare hit looking back. Reads
    without a hit (only remembered, counted back from the end no further than ``within``
    needs) and reads with one give the hits :meth:`ContextMemory.hits` gives, and remember
    every line a later hit could reach under the same line number."""
    cfg = config(tmp_path, within=within, keep=50, extra=", require = true")
    rng = random.Random(chunk * within)
    lines = [used_up(pid) if rng.random() < 0.01 else
             rng.choice([connection(pid, f"192.0.2.{pid}"), "filler " * rng.randrange(1, 40)])
             for pid in (rng.randrange(30) for _ in range(6000))]
    reads = reads_of(lines, chunk)
    matcher = Matcher(cfg.rules)
    walked, followed = ContextMemory(cfg.rules, "auth"), ContextMemory(cfg.rules, "auth")
    for data in reads:
        walk_and_follow(walked, followed, matcher, data)
        assert recent(walked, within) == recent(followed, within)
    assert walked.unlinked == followed.unlinked
    assert sum(map(len, recent(walked, within).values())) > 5


def test_reached_numbers_each_line_it_keeps(tmp_path: Path) -> None:
    """:meth:`ContextMemory._reached` numbers each spot it keeps by the newlines before it,
    though it stops counting at the first ``context`` line out of reach."""
    cfg = config(tmp_path, within=3)
    lines = [connection(1, "192.0.2.1"), "filler\n" * 9, connection(2, "192.0.2.2"),
             "filler", used_up(2), connection(3, "192.0.2.3"), "filler\n" * 5,
             connection(4, "192.0.2.4"), connection(5, "192.0.2.5"), "filler"]
    data = "".join(f"{line}\n" for line in lines).encode()
    memory = ContextMemory(cfg.rules, "auth")
    spots = Matcher(cfg.rules).find(data, groups=True).spots(memory.links)
    keys, numbers = memory._reached(spots, data, data.count(b"\n"))
    kept = [start for key, start, _, _ in spots if key in keys]
    assert len(kept) == 4  # connection 2 and its hit; connections 4 and 5 (within 3 of the end)
    assert {start: numbers[start] for start in kept} == {
        start: data.count(b"\n", 0, start) for start in kept}


TWO_RULES = """
[[rules]]
id = "banned"
match = 'app\\[(?P<pid>\\d+)\\]: banned (?P<user>\\w+)'
resolve = 'app\\[(?P<pid>\\d+)\\]: unbanned (?P<user>\\w+)'
context = { key = "{pid}", from = 'app\\[(?P<pid>\\d+)\\]: hello from (?P<ip>[\\d.]+)', within = 500 }
title = "banned {user} from {ip}"
"""


@pytest.mark.parametrize("chunk", [7, 60, 400])
def test_following_two_rules_of_different_reach_and_resolves_as_the_walk_does(
        tmp_path: Path, chunk: int) -> None:
    """Two context-taking rules, ``within`` 3 and 500, and resolving lines: reads with hits
    of one rule only, of the other, of both, with resolves and with none give what
    :meth:`ContextMemory.hits` gives, and remember what a later hit could reach (the walk
    back stops at the reach of the farthest-reaching rule present, not the nearest)."""
    rng = random.Random(chunk)
    text = (f'[logwatch]\nstate_dir = "{tmp_path}/state"\n'
            + RULE.format(within=3, keep=10_000, extra="") + TWO_RULES)
    cfg = load_config(write(tmp_path / "logwatch.toml", text), environ={})

    def line() -> str:
        pid, roll = rng.randrange(20), rng.random()
        if roll < 0.02:
            return used_up(pid)
        if roll < 0.04:
            return f"app[{pid}]: {rng.choice(['banned', 'unbanned'])} u{pid}"
        if roll < 0.5:
            return rng.choice([connection(pid, f"192.0.2.{pid}"),
                               f"app[{pid}]: hello from 198.51.100.{pid}"])
        return "filler"

    lines = [line() for _ in range(4000)]
    reads = reads_of(lines, chunk)
    matcher = Matcher(cfg.rules)
    walked, followed = ContextMemory(cfg.rules, "auth"), ContextMemory(cfg.rules, "auth")
    kinds: set[str] = set()
    for data in reads:
        got = walk_and_follow(walked, followed, matcher, data)
        kinds.update(f"{rule}/{kind}" for _, _, rule, kind, _ in got)
        assert recent(walked, 3)["too-many"] == recent(followed, 3)["too-many"]
        assert recent(walked, 500)["banned"] == recent(followed, 500)["banned"]
    assert kinds == {"too-many/match", "banned/match", "banned/resolve"}
