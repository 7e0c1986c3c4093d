"""Stand-in for the app's unpublished ``performance_profiler`` module (written for this harness).

The app's ``retinaface.py`` only calls ``get_profiler().time_block(category, name)`` as a context
manager around its three stages; this one times nothing, so both sides pay the same.
"""

from __future__ import annotations

import contextlib


class NoOpProfiler:
    """``time_block`` returns a context manager that does nothing."""

    def time_block(self, category: str, name: str) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


_PROFILER = NoOpProfiler()


def get_profiler() -> NoOpProfiler:
    return _PROFILER
