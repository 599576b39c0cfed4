"""The chunk reader and replay(): whole lines, right line numbers, nothing lost."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import tomli_w

from logwatch.commands import parallel
from logwatch.commands.replay import read_chunks, replay
from logwatch.config import load_config
from tests.helpers import logwatch


@pytest.mark.parametrize("size", [1, 3, 7, 64, 1 << 20])
def test_chunks_are_whole_lines_and_add_up(size: int) -> None:
    """Every chunk ends at a newline; together they are the input (plus a final newline)."""
    data = b"first\n\nthird line is longer than seven\nno newline at the end"
    chunks = list(read_chunks(io.BytesIO(data), size))
    assert all(c.endswith(b"\n") for c in chunks)
    assert b"".join(chunks) == data + b"\n"


def test_empty_stream_has_no_chunks() -> None:
    """Nothing in, nothing out."""
    assert list(read_chunks(io.BytesIO(b""), 16)) == []


def test_replay_line_numbers_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With tiny chunks, --json line numbers are still the lines' numbers in the file."""
    monkeypatch.setattr("logwatch.commands.replay.CHUNK_SIZE", 64)
    log = tmp_path / "auth.log"
    lines = [f"sshd[{i}]: Failed password for u{i} from 10.1.0.{i} port 22"
             if i % 7 == 0 else f"CRON[{i}]: session opened" for i in range(1, 200)]
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = tmp_path / "c.toml"
    cfg.write_text(tomli_w.dumps({
        "logwatch": {"state_dir": str(tmp_path / "s")},
        "rules": [{"id": "fail", "match": r"Failed password for (?P<user>\S+)"}]}), "utf-8")
    out = io.StringIO()
    result = replay(load_config(cfg), [log], out, as_json=True)
    got = [(h["line_no"], h["fields"]["user"]) for h in map(json.loads, out.getvalue().splitlines())]
    assert got == [(i, f"u{i}") for i in range(7, 200, 7)]
    assert result.lines == 199
    assert result.hits["fail"] == len(got)


# -- several processes ----------------------------------------------------------


def _boundaries(data: bytes, segment: int) -> list[int]:
    with io.BytesIO(data) as stream:
        return parallel.boundaries(stream, len(data), segment)


@pytest.mark.parametrize("segment", [1, 5, 16, 1000])
def test_segments_end_right_after_a_newline_and_cover_the_file(segment: int) -> None:
    data = b"a\nbb\n" + b"x" * 40 + b"\n\nccc\nlast line without newline"
    cuts = _boundaries(data, segment)
    assert cuts[0] == 0
    assert cuts[-1] == len(data)
    assert cuts == sorted(set(cuts))
    assert all(data[cut - 1: cut] == b"\n" for cut in cuts[1:-1])
    if segment == 16:
        assert len(cuts) > 3  # the long line makes one segment longer, the others stay


def _auth_log(path: Path, lines: int) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for i in range(lines):
            if i % 5 == 0:
                out.write(f"sshd[{i}]: Failed password for u{i % 97} from 10.0.{i % 250}.1 port 22\n")
            elif i % 11 == 0:
                out.write(f"sshd[{i}]: Failed password for u{i} from 10.9.9.9 port 22\n")
            else:
                out.write(f"CRON[{i}]: (root) CMD (run-parts /etc/cron.hourly) \xe9\n")
    with path.open("ab") as raw:
        raw.write(b"sshd[1]: Failed password for \xff\xfe from 10.1.1.1 port 22")  # no newline


def test_several_processes_find_exactly_what_one_finds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segments scanned by 2 worker processes: same hits, line numbers, samples, counts."""
    log = tmp_path / "auth.log"
    _auth_log(log, 20_000)
    monkeypatch.setattr(parallel, "SEGMENT", 64 << 10)
    cfg = tmp_path / "c.toml"
    cfg.write_text(tomli_w.dumps({
        "logwatch": {"state_dir": str(tmp_path / "s"), "ignore": ["10\\.9\\.9\\.9"]},
        "rules": [{"id": "fail", "match": r"Failed password for (?P<user>\S+) from (?P<ip>\S+)"},
                  {"id": "cron", "match": r"CRON\[(?P<pid>\d+)\]"}]}), "utf-8")
    config = load_config(cfg)
    with log.open("rb") as stream:
        assert parallel.worth_it(stream)
        assert len(parallel.boundaries(stream, log.stat().st_size)) > 10
    results, outputs = [], []
    for jobs in (1, 2):
        out = io.StringIO()
        results.append(replay(config, [log], out, as_json=True, jobs=jobs))
        outputs.append(out.getvalue())
    one, two = results
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) == sum(one.hits.values()) > 15_000
    assert (one.lines, one.bytes, one.hits, one.samples, one.ignored) == (
        two.lines, two.bytes, two.hits, two.samples, two.ignored)
    assert one.ignored["fail"] > 0
    assert json.loads(outputs[0].splitlines()[-1])["line_no"] == 20_001


def test_jobs_option(tmp_path: Path) -> None:
    """`logwatch test -j N` takes a positive number; 0 is a one-line usage error."""
    log = tmp_path / "auth.log"
    _auth_log(log, 50)
    cfg = tmp_path / "c.toml"
    cfg.write_text(tomli_w.dumps({
        "logwatch": {"state_dir": str(tmp_path / "s")},
        "rules": [{"id": "fail", "match": r"Failed password for (?P<user>\S+)"}]}), "utf-8")
    ok = logwatch("test", "-j", "2", "-c", str(cfg), str(log))
    assert ok.returncode == 0
    assert "Lines: 51, matched: 15," in ok.stdout
    bad = logwatch("test", "-j", "0", "-c", str(cfg), str(log))
    assert bad.returncode == 2
    assert "expected a whole number of at least 1" in bad.stderr


def _die(start: int, stop: int) -> None:
    os._exit(9)  # what the OOM killer leaves behind


def test_a_worker_that_dies_is_reported_not_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "auth.log"
    _auth_log(log, 5_000)
    monkeypatch.setattr(parallel, "SEGMENT", 16 << 10)
    monkeypatch.setattr(parallel, "_scan_segment", _die)
    cfg = tmp_path / "c.toml"
    cfg.write_text(tomli_w.dumps({
        "logwatch": {"state_dir": str(tmp_path / "s")},
        "rules": [{"id": "fail", "match": r"Failed password for (?P<user>\S+)"}]}), "utf-8")
    result = replay(load_config(cfg), [log], io.StringIO(), jobs=2)
    assert len(result.errors) == 1
    assert "worker process stopped" in result.errors[0]
    assert "try -j 1" in result.errors[0]


RULE = """
[[rules]]
id = "fail"
match = 'Failed password for (?P<user>\\S+)'
"""


def test_json_line_numbers_are_per_file(tmp_path: Path) -> None:
    """Line 2 of the second file is line_no 2, not 2 plus the first file's lines."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(RULE, encoding="utf-8")
    one = tmp_path / "one.log"
    one.write_text("x\nFailed password for a\nx\n", encoding="utf-8")
    two = tmp_path / "two.log"
    two.write_text("x\nFailed password for b\n", encoding="utf-8")
    out = logwatch("test", "-c", str(cfg), "--json", str(one), str(two))
    assert out.returncode == 0, out.stderr
    hits = [json.loads(x) for x in out.stdout.splitlines()]
    assert [(h["file"], h["line_no"]) for h in hits] == [(str(one), 2), (str(two), 2)]


def test_dash_reads_standard_input(tmp_path: Path) -> None:
    """`journalctl -o short | logwatch test -c CFG -`."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(RULE, encoding="utf-8")
    out = logwatch("test", "-c", str(cfg), "--json", "-",
                   input_text="x\nFailed password for root\n")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"rule": "fail", "file": "-", "line_no": 2,
                                      "fields": {"user": "root"}}


def test_a_missing_file_is_said_first_with_the_journal_hint(tmp_path: Path) -> None:
    """No table of zeros before the error: the error, and what to try instead."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(RULE, encoding="utf-8")
    out = logwatch("test", "-c", str(cfg), str(tmp_path / "auth.log"))
    assert out.returncode == 1
    assert out.stdout == ""
    first, hint = out.stderr.splitlines()
    assert first == f"logwatch: {tmp_path / 'auth.log'}: no such file"
    assert hint == (f"logwatch: on a system that logs to the journal only, try: "
                    f"journalctl -o short | logwatch test -c {cfg} -")
