"""Delivery: the on-disk outbox, and one sender per destination that empties it in order.

Alerts are queued in the SQLite outbox (:mod:`~logwatch.delivery.outbox`) in the
same transaction that advances a source. A :class:`~logwatch.delivery.sender.Sender`
thread per destination paces, batches, retries and marks each row delivered or
dead; :mod:`~logwatch.delivery.destinations` renders and posts for each service
(console, Discord, Telegram).
"""

from logwatch.delivery.sender import Sender, build_senders, destination_status, send_test

__all__ = ["Sender", "build_senders", "destination_status", "send_test"]
