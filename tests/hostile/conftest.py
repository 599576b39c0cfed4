"""Fixtures for the hostile-replies suite: the fake services, a state, senders to stop."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from logwatch.delivery.sender import Sender
from logwatch.state import State
from tests.fakeapi import FakeAPI


@pytest.fixture
def fake() -> Iterator[FakeAPI]:
    """The fake Discord + Telegram with fast rate-limit windows."""
    with FakeAPI(discord_window=(5, 0.2), telegram_window=(1, 0.05),
                 telegram_group_window=(20, 1.0)) as server:
        yield server


@pytest.fixture
def state(tmp_path: Path) -> Iterator[State]:
    """A fresh state database."""
    st = State(tmp_path / "state")
    yield st
    st.close()


@pytest.fixture
def senders() -> Iterator[list[Sender]]:
    """Senders to stop at the end of the test, whatever happened."""
    started: list[Sender] = []
    yield started
    for sender in started:
        sender.stop(0)
