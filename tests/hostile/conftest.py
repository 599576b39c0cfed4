"""Fixtures for the hostile suite: the delivery tests' fake services, state and senders, and
a directory other users can reach."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.delivery.test_sender import fake, senders, state

__all__ = ["fake", "senders", "shared", "state"]


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory other users can reach (pytest's tmp_path is root's alone)."""
    top = Path(tempfile.mkdtemp(prefix="logwatch-hostile-", dir="/tmp"))
    top.chmod(0o755)
    try:
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)

