"""Loggers that import ``logging`` only once a record could be seen.

Until a process imports ``logging``, nothing can have configured a handler or a level: the root
logger's level is WARNING, so a DEBUG or INFO record would be dropped. Such a call returns at
once. A WARNING or above, and every call once ``logging`` is loaded (by the app, by any library,
or by a warning here), goes to ``logging.getLogger(name)``, with the caller's file and line.
This keeps ``logging`` (6 ms of import on the benchmark machine) off the startup of a process
that never uses it; in one that does, the records are exactly those of a plain logger.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging


class LazyLogger:
    """``debug``/``info``/``warning`` of ``logging.getLogger(name)``, imported on demand, and
    ``warning_once``."""

    __slots__ = ("_logger", "_once", "_once_lock", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger: logging.Logger | None = None
        self._once: set[Hashable] = set()
        self._once_lock = threading.Lock()

    @property
    def logger(self) -> logging.Logger:
        """The real logger (importing ``logging`` now if nothing has)."""
        if self._logger is None:
            import logging

            self._logger = logging.getLogger(self.name)
        return self._logger

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        if "logging" in sys.modules:
            self.logger.debug(msg, *args, **_one_frame_up(kwargs))

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        if "logging" in sys.modules:
            self.logger.info(msg, *args, **_one_frame_up(kwargs))

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.logger.warning(msg, *args, **_one_frame_up(kwargs))

    def warning_once(self, key: Hashable, msg: object, *args: object, **kwargs: Any) -> None:
        """``warning`` the first time this logger sees ``key`` in this process (thread-safe),
        e.g. once per frame size that no bucket holds."""
        with self._once_lock:
            if key in self._once:
                return
            self._once.add(key)
        self.logger.warning(msg, *args, **_one_frame_up(kwargs))


def _one_frame_up(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The record names the caller of ``LazyLogger``, not ``LazyLogger`` itself."""
    return {**kwargs, "stacklevel": kwargs.get("stacklevel", 1) + 1}


def get_logger(name: str) -> LazyLogger:
    """The module's logger, e.g. ``log = get_logger(__name__)``."""
    return LazyLogger(name)
