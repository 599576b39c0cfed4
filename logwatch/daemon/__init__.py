"""The daemon (``logwatch run``): sources -> matching -> policy -> outbox, and the senders.

:class:`~logwatch.daemon.service.Service` reads the sources, matches, applies the
policy and commits alerts with the sources' checkpoints in one transaction; it
starts one sender per destination, reloads on SIGHUP and drains on SIGTERM.
:mod:`~logwatch.daemon.sd_notify` speaks systemd's notify protocol.
"""

from logwatch.daemon.service import Service, run

__all__ = ["Service", "run"]
