"""``logwatch status``: what the daemon follows and delivers, read from its SQLite state.

It opens the database read-only, so it works while the daemon runs, and shows
nothing secret: destinations store only redacted errors.
"""

from __future__ import annotations

import time
from typing import Any

from logwatch.config import Config
from logwatch.delivery.sender import destination_status
from logwatch.sources import checkpoint_rows
from logwatch.state import DB_NAME, State, get_value, get_values


def collect_status(config: Config) -> dict[str, Any]:
    """Everything ``status`` shows, as plain data (also what ``--json`` prints)."""
    db = config.settings.state_dir / DB_NAME
    report: dict[str, Any] = {"config": str(config.path), "state": str(db), "running_state": True}
    if not db.exists():
        report["running_state"] = False
        return report
    state = State(config.settings.state_dir, readonly=True)
    try:
        with state.transaction() as conn:
            checkpoints = get_values(conn, "checkpoint")
            report["sources"] = [row for name, cp in sorted(checkpoints.items())
                                 for row in checkpoint_rows(name, cp)]
            report["destinations"] = destination_status(conn)
            report["policy"] = get_values(conn, "policy-status")
            if config.fleet is not None:
                report["fleet"] = get_value(conn, "fleet", "link")
    finally:
        state.close()
    return report


def format_status(report: dict[str, Any]) -> str:
    """The human-readable form of :func:`collect_status`."""
    lines = [f"config: {report['config']}", f"state:  {report['state']}"]
    if not report.get("running_state"):
        lines.append("no state yet: logwatch run has not started with this state_dir")
        return "\n".join(lines)
    lines.append("\nsources:")
    for row in report.get("sources", []):
        if "cursor" in row:
            lines.append(f"  {row['source']:<12} journal  cursor {row['cursor']}")
        else:
            lag = row.get("lag")
            lag_text = f"{lag:,} bytes behind" if isinstance(lag, int) else "file missing"
            lines.append(f"  {row['source']:<12} {row['path']}  offset {row.get('offset', 0):,}"
                         f"  ({lag_text})")
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
