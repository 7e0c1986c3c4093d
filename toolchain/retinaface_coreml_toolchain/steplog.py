"""One helper logs every step's start, end and duration."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

log = logging.getLogger("toolchain")


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    """Log ``name`` starting, then done (with seconds) or failed."""
    log.info("%s: start", name)
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        log.info("%s: failed after %.2f s", name, time.perf_counter() - started)
        raise
    log.info("%s: done in %.2f s", name, time.perf_counter() - started)
