"""The user cache root: the CoreML cache and the hash memory both live below it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ENV_VAR = "RETINAFACE_COREML_CACHE_DIR"
APP_NAME = "retinaface-coreml"


def cache_root(env: Mapping[str, str] = os.environ) -> Path:
    """The user cache root, e.g. ``~/Library/Caches/retinaface-coreml`` on macOS.

    ``RETINAFACE_COREML_CACHE_DIR`` overrides it (CI, read-only home directories).
    """
    override = env.get(ENV_VAR)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))
