"""Tests marked ``corpus`` need the external log corpus: skipped when it is absent (one
reason for all of them), failed instead under ``LOGWATCH_REQUIRE_CORPUS=1`` (CI)."""

from __future__ import annotations

import os

import pytest

from tests.helpers import REQUIRE_CORPUS, corpus_missing


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip (or, where the corpus is required, fail) a ``corpus`` test when it is absent."""
    if item.get_closest_marker("corpus") is None or (reason := corpus_missing()) is None:
        return
    if os.environ.get(REQUIRE_CORPUS) == "1":
        pytest.fail(f"{REQUIRE_CORPUS}=1 but this test {reason}", pytrace=False)
    pytest.skip(reason)
