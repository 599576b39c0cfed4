"""``logwatch status``: what the daemon follows and delivers, read from its SQLite state.

It opens the database read-only, so it works while the daemon runs, and shows
nothing secret: destinations store only redacted errors.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from logwatch.config import Config
from logwatch.delivery.sender import destination_status
from logwatch.errors import StateError
from logwatch.sources import checkpoint_rows
from logwatch.state import DB_NAME, State, get_values
from logwatch.terminal import escape_controls


def collect_status(config: Config) -> dict[str, Any]:
    """Everything ``status`` shows, as plain data (also what ``--json`` prints)."""
    db = config.settings.state_dir / DB_NAME
    report: dict[str, Any] = {"config": str(config.path), "state": str(db), "running_state": True}
    try:
        exists = db.exists()
    except OSError as exc:  # a state_dir we may not enter
        raise StateError(f"{db}: cannot read the state database: {exc.strerror}") from exc
    if not exists:
        report["running_state"] = False
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
            report["destinations"] = destination_status(conn)
            report["policy"] = get_values(conn, "policy-status")
    finally:
        state.close()


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
    lines.extend(_open_counts(report.get("sources", [])))
    lines.append("\ndestinations:")
    for name, info in sorted(report.get("destinations", {}).items()):
        lines.append(f"  {name:<12} pending {info.get('pending', 0):>6}  dead "
                     f"{info.get('dead', 0):>6}  delivered {info.get('delivered', 0):>8}  "
                     f"skipped {info.get('skipped', 0):>6}")
        details = [("failing since", "failing_since"), ("last error", "last_error"),
                   ("last dead", "last_dead_reason"),
                   ("chat migrated to (update chat_id in the config)", "migrated_chat_id")]
        lines.extend(f"  {'':<12} {label}: {info[key]}" for label, key in details
                     if info.get(key))
    for key, value in sorted(report.get("policy", {}).items()):
        lines.append(f"policy {key}: {value}")
    return "\n".join(lines)
