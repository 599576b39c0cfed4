"""Which matching engine runs here: Hyperscan where it loads, else pure Python.

Hyperscan is a default dependency where it publishes wheels (Linux x86-64 and
aarch64, see pyproject.toml). Elsewhere, or when its module is missing or cannot
load (a wheel for another CPU, a broken install), the matcher uses the pure-Python
scanners: the same hits, several times slower. ``LOGWATCH_SCANNER=python`` chooses
them on purpose. ``logwatch check`` and ``run``'s start-up summary say which runs.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from importlib import import_module, metadata
from typing import Literal

log = logging.getLogger(__name__)

#: the environment variable that turns Hyperscan off ("python")
ENV = "LOGWATCH_SCANNER"
#: an import error is quoted up to this many characters (it names a path or a symbol)
_WHY_MAX = 160


@dataclass(frozen=True, slots=True)
class Engine:
    """The engine the matcher uses, and why not Hyperscan when it is not."""

    name: Literal["hyperscan", "python"]
    version: str | None = None
    why: str = ""

    def describe(self) -> str:
        """One line for people: ``Hyperscan 0.9.1`` or ``pure Python (why)``."""
        if self.name == "hyperscan":
            return f"Hyperscan {self.version or '(version unknown)'}"
        return f"pure Python ({self.why})" if self.why else "pure Python"


def current(prefer: str | None = None) -> Engine:
    """The engine for ``prefer`` (default: ``$LOGWATCH_SCANNER``): Hyperscan if it loads."""
    prefer = prefer or os.environ.get(ENV) or None
    if prefer not in (None, "hyperscan"):
        return Engine("python", why=f"{ENV}={prefer}")
    return _probe()


def hyperscan_loads() -> bool:
    """Whether ``import hyperscan`` works here (tried once per process)."""
    return _probe().name == "hyperscan"


@functools.cache
def _probe() -> Engine:
    try:
        module = import_module("hyperscan")
    except ModuleNotFoundError as exc:
        if exc.name != "hyperscan":
            return _broken(exc)
        return Engine("python", why="hyperscan is not installed")
    except Exception as exc:  # a wheel for another CPU, a missing libhs: fall back, say why
        return _broken(exc)
    version = getattr(module, "__version__", None)
    if not isinstance(version, str):
        try:
            version = metadata.version("hyperscan")
        except metadata.PackageNotFoundError:
            version = None
    return Engine("hyperscan", version=version)


def _broken(exc: BaseException) -> Engine:
    text = " ".join(str(exc).split())[:_WHY_MAX] or type(exc).__name__
    log.debug("hyperscan cannot be loaded: %s", text)
    return Engine("python", why=f"hyperscan cannot be loaded: {text}")
