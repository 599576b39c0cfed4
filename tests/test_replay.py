"""The chunk reader and replay(): whole lines, right line numbers, nothing lost."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import tomli_w

from logwatch.config import load_config
from logwatch.replay import read_chunks, replay


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
    monkeypatch.setattr("logwatch.replay.CHUNK_SIZE", 64)
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
