"""Fixtures for the hostile suite: the delivery tests' fake services, state and senders."""

from __future__ import annotations

from tests.delivery.test_sender import fake, senders, state

__all__ = ["fake", "senders", "state"]
