"""A stand-in ``journalctl --follow --output=json``: prints recorded entries, then follows.

Entries come from the JSON-lines file in ``$FAKE_JOURNAL`` (any other line is
printed as is, to test garbage handling); new lines appended to it are printed as
they come, until the process is killed. Honours ``--after-cursor=``, ``--since=@SECONDS``,
``--lines=0`` and ``--no-tail``; appends its argv as JSON to ``$FAKE_JOURNAL_ARGS`` once it
has read the journal. With
``$FAKE_JOURNAL_EXIT_AFTER=N`` the first run exits with status 1 after N lines.
"""

from __future__ import annotations

import json
import os
import sys
import time


def cursor_of(line: str) -> str | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry.get("__CURSOR") if isinstance(entry, dict) else None


def _after(line: str, since: float) -> bool:
    """Is the entry on ``line`` from ``since`` (seconds) on? (garbage: printed)"""
    try:
        stamp = json.loads(line).get("__REALTIME_TIMESTAMP", "0")
        return int(stamp) >= since * 1e6
    except (ValueError, AttributeError):
        return True


def main() -> int:
    args = sys.argv[1:]
    after = next((a.split("=", 1)[1] for a in args if a.startswith("--after-cursor=")), None)
    since = next((float(a.split("=@", 1)[1]) for a in args if a.startswith("--since=@")), None)
    exit_after = int(os.environ.get("FAKE_JOURNAL_EXIT_AFTER", "0"))
    marker = os.environ["FAKE_JOURNAL_ARGS"] + ".exited"
    if exit_after and os.path.exists(marker):
        exit_after = 0
    printed = 0
    with open(os.environ["FAKE_JOURNAL"], encoding="utf-8") as journal:
        existing = journal.readlines()
        # recorded once the journal is open, so a test knows what counts as "existing"
        with open(os.environ["FAKE_JOURNAL_ARGS"], "a", encoding="utf-8") as f:
            f.write(json.dumps(args) + "\n")
        if "--lines=0" in args:
            todo: list[str] = []
        elif since is not None:
            todo = [line for line in existing if _after(line, since)]
        elif after is not None:
            cursors = [cursor_of(line) for line in existing]
            todo = existing[cursors.index(after) + 1:] if after in cursors else existing
        else:
            todo = existing
        while True:
            for line in todo:
                sys.stdout.write(line if line.endswith("\n") else line + "\n")
                sys.stdout.flush()
                printed += 1
                if exit_after and printed >= exit_after:
                    open(marker, "w").close()
                    sys.stderr.write("fake journalctl: giving up on purpose\n")
                    return 1
            todo = journal.readlines()
            if not todo:
                time.sleep(0.005)  # a follower polling its journal file


if __name__ == "__main__":
    sys.exit(main())
