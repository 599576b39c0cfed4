"""`logwatch run` on a machine where a source has nothing to read: one clear line says so."""

from __future__ import annotations

from pathlib import Path

from logwatch.sources.journal import journal_files_exist
from tests.helpers import Daemon, write


def test_sources_with_nothing_here_are_named_once_with_what_to_try(tmp_path: Path) -> None:
    """A missing log is named with what to try; a source that reads is not."""
    write(tmp_path / "app.log", "a line\n")
    config = write(tmp_path / "c.toml", f"""
[logwatch]
state_dir = "{tmp_path / 'state'}"
start_at = "beginning"
[sources.auth]
files = ["{tmp_path / 'auth.log'}", "{tmp_path / 'secure'}"]
[sources.app]
files = ["{tmp_path / 'app.log'}"]
""")
    with Daemon(config) as daemon:
        err = daemon.wait_stderr("nothing to read here")
        line = next(x for x in err.splitlines() if "nothing to read here" in x)
        assert f'"auth" (no {tmp_path / "auth.log"}, {tmp_path / "secure"})' in line
        assert '"app"' not in line
        assert f"logwatch test -c {config}" in line and "logwatch send-test" in line
        assert daemon.stop() == 0
        assert daemon.stderr.count("nothing to read here") == 1


def test_an_empty_journal_is_recognised(tmp_path: Path) -> None:
    """journalctl --follow waits silently on a journal without files: logwatch looks."""
    (tmp_path / "var" / "abc").mkdir(parents=True)
    assert not journal_files_exist([tmp_path / "var", tmp_path / "run"])
    (tmp_path / "run" / "abc").mkdir(parents=True)
    (tmp_path / "run" / "abc" / "system.journal").write_bytes(b"")
    assert journal_files_exist([tmp_path / "var", tmp_path / "run"])


def test_sources_with_the_same_reason_share_it(tmp_path: Path) -> None:
    """Thirteen packs' sources on an empty machine: each reason is said once, not per source."""
    config = write(tmp_path / "c.toml", f"""
[logwatch]
state_dir = "{tmp_path / 'state'}"
[sources.auth]
files = ["{tmp_path / 'gone' / 'x.log'}"]
journal = {{ match = ["SYSLOG_FACILITY=4"] }}
[sources.kernel]
files = ["{tmp_path / 'gone' / 'y.log'}"]
journal = {{ match = ["SYSLOG_FACILITY=0"] }}
""")
    fake = write(tmp_path / "journalctl", "#!/bin/sh\nexec sleep 60\n")  # an empty journal
    fake.chmod(0o755)
    with Daemon(config, env={"PATH": f"{tmp_path}:/usr/bin:/bin"}) as daemon:
        err = daemon.wait_stderr("nothing to read here")
        line = next(x for x in err.splitlines() if "nothing to read here" in x)
        assert 'source "auth", source "kernel" (' in line
        assert line.count("no journal files") == 1
        assert daemon.stop() == 0
