"""``logwatch retry [DEST]``: queue the dead alerts again, once the config is fixed.

A destination that refused logwatch for good (bad token, deleted webhook, wrong
chat) leaves the alert it refused dead. After the fix, ``retry`` makes those rows
pending again; they keep their place (``seq``), so they go out first, in order.
"""

from __future__ import annotations

from logwatch.config import Config
from logwatch.delivery.outbox import requeue_dead
from logwatch.errors import LogwatchError
from logwatch.state import DB_NAME, State


def retry_dead(config: Config, destination: str | None = None) -> dict[str, int]:
    """Re-queue the dead rows of ``destination`` (default: every one); how many each."""
    names = sorted(config.destinations) if destination is None else [destination]
    if destination is not None and destination not in config.destinations:
        raise LogwatchError(f'no destination "{destination}" in {config.path} '
                            f"(destinations: {', '.join(sorted(config.destinations))})")
    if not (config.settings.state_dir / DB_NAME).exists():
        raise LogwatchError(f"no state in {config.settings.state_dir}: logwatch run has not "
                            "started with this state_dir, so nothing is dead")
    state = State(config.settings.state_dir)
    try:
        with state.transaction() as conn:
            return {name: requeue_dead(conn, name) for name in names}
    finally:
        state.close()
