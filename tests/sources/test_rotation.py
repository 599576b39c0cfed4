"""The rotation matrix: a writer appends numbered lines at speed while the file is rotated.

Every scenario runs with inotify on and with the periodic check only.
Every numbered line must be read exactly once, under keys never used twice;
copytruncate alone may lose lines, and only those written between the copy and
the truncation (the documented window: they are in neither file).
"""

from __future__ import annotations

import os
import random
import shutil
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.sources.conftest import Reader

LINES = 4000
ROTATE_EVERY = 800
BURST = 40


class Writer(threading.Thread):
    """Appends ``line NNNNNN ...`` lines to ``path``; ``rotate`` runs every ROTATE_EVERY lines."""

    def __init__(self, path: Path, rotate: Callable[[Writer], None], split: bool = False,
                 tail: bytes = b"") -> None:
        super().__init__(daemon=True)
        self.path = path
        self.rotate_fn = rotate
        self.split = split
        self.final = tail
        self.fd = -1
        self.written = 0
        self.between: set[int] = set()  # written between a copy and its truncation
        self.caught_up: Callable[[], bool] = lambda: True
        self.error: BaseException | None = None
        self.rng = random.Random(3)

    def reopen(self) -> None:
        """What a daemon does on SIGHUP: close its log and open the path again."""
        if self.fd >= 0:
            os.close(self.fd)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def line(self, n: int) -> bytes:
        """The numbered line (some padding so files grow)."""
        return b"line %06d %s\n" % (n, b"x" * (n % 50))

    def put(self, data: bytes) -> None:
        """One write, in pieces when testing partial lines."""
        if self.split and len(data) > 4:
            cut = self.rng.randrange(1, len(data) - 1)
            os.write(self.fd, data[:cut])
            os.write(self.fd, data[cut:])
        else:
            os.write(self.fd, data)

    def run(self) -> None:
        try:
            if self.fd < 0:
                self.reopen()
            while self.written < LINES:
                for _ in range(BURST):
                    self.put(self.line(self.written))
                    self.written += 1
                    if self.written % ROTATE_EVERY == 0 and self.written < LINES:
                        self.rotate_fn(self)
                threading.Event().wait(0.002)  # pacing: the reader should interleave with us
            if self.final:
                os.write(self.fd, self.final)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            os.close(self.fd)


# -- the rotations, as the writer (or logrotate beside it) performs them ---------


def rename_create(w: Writer) -> None:
    """logrotate's default: rename, create, then the daemon reopens a little later."""
    os.rename(w.path, f"{w.path}.1")
    for _ in range(20):  # still written to the old inode: must be drained
        w.put(w.line(w.written))
        w.written += 1
    w.path.touch()
    w.reopen()


def rename_to_olddir(w: Writer) -> None:
    """logrotate's ``olddir``: as rename + create, into another directory.

    Watchdog holds back every event behind a move out of the watched directory for
    half a second; meanwhile the next rotation would replace the unread file.
    """
    old = w.path.parent / "old"
    old.mkdir(exist_ok=True)
    os.rename(w.path, old / f"{w.path.name}.1")
    for _ in range(20):
        w.put(w.line(w.written))
        w.written += 1
    w.path.touch()
    w.reopen()


def copytruncate(w: Writer) -> None:
    """logrotate ``copytruncate``: copy, then truncate under the writer's feet."""
    shutil.copyfile(w.path, f"{w.path}.1")
    for _ in range(5):  # the window: in neither the copy nor the truncated file
        w.between.add(w.written)
        w.put(w.line(w.written))
        w.written += 1
    os.truncate(w.path, 0)


def delete_recreate(w: Writer) -> None:
    """The file is deleted (the writer keeps writing to it a bit), then created again."""
    os.unlink(w.path)
    for _ in range(20):
        w.put(w.line(w.written))
        w.written += 1
    w.reopen()


def truncate_zero(w: Writer) -> None:
    """``: > file`` once the reader has read everything: nothing may be lost after it."""
    wait_until(w.caught_up)
    os.truncate(w.path, 0)


def rename_over(w: Writer) -> None:
    """A new file is prepared beside, then renamed over the followed one."""
    new = w.path.with_name(w.path.name + ".tmp")
    fd = os.open(new, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for _ in range(10):  # written before the rename: read from the new file's start
        os.write(fd, w.line(w.written))
        w.written += 1
    os.rename(new, w.path)
    os.close(w.fd)
    w.fd = fd


def no_rotation(w: Writer) -> None:
    """For the late-file and partial-line scenarios."""


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition with a deadline (from the writer thread)."""
    event = threading.Event()
    for _ in range(int(timeout / 0.005)):
        if predicate():
            return
        event.wait(0.005)
    raise AssertionError("reader did not catch up")


SCENARIOS = {
    "rename+create": rename_create,
    "rename-to-olddir": rename_to_olddir,
    "copytruncate": copytruncate,
    "delete+recreate": delete_recreate,
    "truncate-to-zero": truncate_zero,
    "rename-over": rename_over,
    "late-file": no_rotation,
    "partial-lines": no_rotation,
}


def numbers(reader: Reader) -> list[int]:
    """The line numbers read, in order; fails on anything that is not a whole numbered line."""
    out = []
    for text in reader.texts():
        assert text.startswith("line "), f"not a whole line: {text!r}"
        out.append(int(text.split()[1]))
    return out


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "poll-only"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_line_once(tmp_path: Path, follow: Callable[..., Reader], scenario: str,
                         inotify: bool) -> None:
    """Every numbered line is read once (copytruncate: only the documented window is lost)."""
    path = tmp_path / "app.log"
    final = b"the last line has no newline" if scenario == "partial-lines" else b""
    writer = Writer(path, SCENARIOS[scenario], split=scenario == "partial-lines", tail=final)
    if scenario != "late-file":
        writer.reopen()  # exists at startup, empty, so start_at = "end" reads it all
    # with inotify a slow periodic check shows that the events alone keep us current
    reader = follow([tmp_path / "*.log"], use_inotify=inotify,
                    poll_interval=2.0 if inotify else 0.05)
    writer.caught_up = lambda: len(reader.lines) >= writer.written
    writer.start()
    expected = LINES + (1 if final else 0)
    reader.until(lambda: len(reader.lines) >= expected or (
        not writer.is_alive() and len(reader.lines) >= expected - len(writer.between)
        and reader.lines[-1:] == [writer.line(LINES - 1)]))
    writer.join()
    assert writer.error is None, writer.error
    reader.read_once()  # nothing more may come

    reader.assert_unique_keys()
    if final:
        assert reader.lines[-1] == final + b"\n"
        reader.lines.pop()
    seen = numbers(reader)
    assert not [n for n, c in Counter(seen).items() if c > 1], "a line was read twice"
    missing = sorted(set(range(LINES)) - set(seen))
    assert set(missing) <= writer.between, "lost a line outside the copytruncate window"
    assert seen == sorted(seen), "lines out of order"
    if scenario == "copytruncate":
        print(f"copytruncate: lost {len(missing)} of the {len(writer.between)} lines "
              "written between copy and truncate")
