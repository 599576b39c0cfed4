"""``logwatch status``: what the daemon follows and delivers, read from its SQLite state.

It opens the database read-only, so it works while the daemon runs, reads no
secret (the config is loaded with ``read_secrets=False``: a report needs none) and
shows nothing secret: destinations store only redacted errors.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from logwatch.config import Config, DiscordDestination, TelegramDestination
from logwatch.delivery.outbox import dead
from logwatch.delivery.sender import destination_status
from logwatch.errors import StateError
from logwatch.sources import checkpoint_rows
from logwatch.state import DB_NAME, State, get_value, get_values
from logwatch.state_lock import running_pid
from logwatch.terminal import escape_controls

#: how many dead rows ``status`` names per destination
DEAD_SHOWN = 5


def collect_status(config: Config) -> dict[str, Any]:
    """Everything ``status`` shows, as plain data (also what ``--json`` prints)."""
    db = config.settings.state_dir / DB_NAME
    pid = running_pid(config.settings.state_dir)
    try:
        exists = db.exists()
    except OSError as exc:  # a state_dir we may not enter
        raise StateError(f"{db}: cannot read the state database: {exc.strerror}") from exc
    report: dict[str, Any] = {"config": str(config.path), "state": str(db),
                              "running": pid is not None, "pid": pid, "state_exists": exists}
    if not exists:
        return report
    try:
        _read_state(config, report)
    except (sqlite3.Error, ValueError, TypeError, AttributeError) as exc:
        # truncated, damaged, or holding values no logwatch wrote
        raise StateError(f"{db}: cannot read the state database: {exc}") from exc
    return report


def _read_state(config: Config, report: dict[str, Any]) -> None:
    state = State(config.settings.state_dir, readonly=True)
    try:
        with state.transaction() as conn:
            checkpoints = get_values(conn, "checkpoint")
            report["sources"] = [row for name, cp in sorted(checkpoints.items())
                                 for row in checkpoint_rows(name, cp)]
            report["unread_sources"] = sorted(set(config.sources) - set(checkpoints))
            report["destinations"] = destination_status(conn)
            for name, info in report["destinations"].items():
                _explain(config, name, info, conn)
            report["policy"] = get_values(conn, "policy-status")
            if config.fleet is not None:
                report["fleet"] = get_value(conn, "fleet", "link")
    finally:
        state.close()


def _explain(config: Config, name: str, info: dict[str, Any], conn: Any) -> None:
    """Add what the user can do: the dead rows and the key to fix; drop stale notes."""
    dest = config.destinations.get(name)
    # the config already says the new chat id: the note has been acted upon
    if isinstance(dest, TelegramDestination) and info.get("migrated_chat_id") == dest.chat_id:
        del info["migrated_chat_id"]
    if not info.get("dead"):
        return
    info["dead_rows"] = [{"seq": seq, "title": _printable(alert.title), "rule": alert.rule}
                         for seq, alert in dead(conn, name, DEAD_SHOWN)]
    if isinstance(dest, DiscordDestination):
        info["fix"] = _secret_key("url", dest.url.origin)
    elif isinstance(dest, TelegramDestination):
        info["fix"] = _secret_key("token", dest.token.origin) + " or chat_id"


def _printable(text: str) -> str:
    """A title from log text, safe for a terminal: one line, no control characters."""
    return "".join(c if c.isprintable() else " " for c in text)[:200]


def _secret_key(key: str, origin: str) -> str:
    """``url_file (/path)`` / ``url (env VAR)``: which setting holds the secret."""
    if origin.startswith("file "):
        return f"{key}_file ({origin.removeprefix('file ')})"
    return f"{key} ({origin})"


def format_status(report: dict[str, Any]) -> str:
    """The human-readable form of :func:`collect_status` (control characters escaped)."""
    return _format(_escaped(report))


def _open_counts(rows: list[dict[str, Any]]) -> list[str]:
    """Per source with parked files: how many are followed and how many are open."""
    out = []
    for source in sorted({r["source"] for r in rows if "path" in r}):
        files = [r for r in rows if r["source"] == source and "path" in r]
        open_now = sum(1 for r in files if r.get("open", True))
        if open_now < len(files):
            out.append(f"  {source:<12} {len(files)} files followed, {open_now} open (the others "
                       "are opened when they grow: the open-file limit)")
    return out


def _escaped(value: Any) -> Any:
    """``value`` with every string in it (keys too) escaped: paths and errors come from outside."""
    if isinstance(value, str):
        return escape_controls(value)
    if isinstance(value, dict):
        return {_escaped(k): _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


def _format(report: dict[str, Any]) -> str:
    lines = [f"config: {report['config']}", f"state:  {report['state']}"]
    lines.append(f"daemon: running (pid {report['pid']})" if report.get("running")
                 else "daemon: not running")
    if not report.get("state_exists"):
        lines.append("no state yet: logwatch run has not started with this state_dir")
        return "\n".join(lines)
    lines.extend(_source_lines(report))
    lines.append("\ndestinations:")
    for name, info in sorted(report.get("destinations", {}).items()):
        lines.append(f"  {name:<12} pending {info.get('pending', 0):>6}  dead "
                     f"{info.get('dead', 0):>6}  delivered {info.get('delivered', 0):>8}  "
                     f"skipped {info.get('skipped', 0):>6}")
        details = [("failing since", "failing_since"), ("last error", "last_error"),
                   ("last dead", "last_dead_reason"),
                   ("chat migrated to (update chat_id in the config)", "migrated_chat_id"),
                   ("sender restarts", "restarts")]
        lines.extend(f"  {'':<12} {label}: {info[key]}" for label, key in details
                     if info.get(key))
        lines.extend(_dead_lines(name, info))
    if not report.get("destinations"):
        lines.append("  nothing sent yet")
    for key, value in sorted(report.get("policy", {}).items()):
        lines.append(f"policy {key}: {value}")
    if "fleet" in report:
        lines.append(format_fleet(report["fleet"]))
    return "\n".join(lines)


def format_fleet(link: dict[str, Any] | None) -> str:
    """``fleet: redis://10.0.0.5:6379/0 connected, 0.4 ms`` (or down since, last error)."""
    if not link:
        return "fleet: no link state yet (the daemon has not run with [fleet])"
    where = f"fleet: {link.get('url')} (namespace {link.get('namespace')})"
    if link.get("connected"):
        text = f"{where} connected, {link.get('latency_ms')} ms"
    else:
        since = link.get("down_since")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since)) if since else "?"
        text = f"{where} UNAVAILABLE since {when}"
    if link.get("last_error"):
        text += f"\n  last error: {link['last_error']}"
    if link.get("failed_open"):
        text += f"\n  done alone while it was down (duplicates possible): {link['failed_open']}"
    return text


def _source_lines(report: dict[str, Any]) -> list[str]:
    lines = ["\nsources:"]
    for row in report.get("sources", []):
        if "cursor" in row:
            lines.append(f"  {row['source']:<12} journal  cursor {row['cursor']}")
        else:
            lag = row.get("lag")
            lag_text = f"{lag:,} bytes behind" if isinstance(lag, int) else "file missing"
            lines.append(f"  {row['source']:<12} {row['path']}  offset {row.get('offset', 0):,}"
                         f"  ({lag_text})")
    lines.extend(f"  {name:<12} nothing read yet" for name in report.get("unread_sources", []))
    lines.extend(_open_counts(report.get("sources", [])))
    return lines


def _dead_lines(name: str, info: dict[str, Any]) -> list[str]:
    if not info.get("dead"):
        return []
    pad = " " * 15
    lines = [f"{pad}dead: #{row['seq']} {row['rule']}: {row['title']}"
             for row in info.get("dead_rows", [])]
    if info["dead"] > len(lines):
        lines.append(f"{pad}... and {info['dead'] - len(lines)} more")
    fix = info.get("fix", "the destination's settings")
    lines.append(f"{pad}to send them: fix {fix}, reload logwatch, then `logwatch retry {name}`")
    return lines
