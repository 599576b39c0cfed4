"""Fixtures for the destination tests: the fake Discord + Telegram server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakeapi import FakeAPI


@pytest.fixture
def fakeapi() -> Iterator[FakeAPI]:
    """A fake of both services on 127.0.0.1, with fast rate-limit windows."""
    with FakeAPI(discord_window=(5, 0.2), telegram_window=(1, 0.05),
                 telegram_group_window=(20, 1.0)) as fake:
        yield fake
