"""``python -m retinaface_coreml``: see :mod:`retinaface_coreml.cli`."""

from __future__ import annotations

from retinaface_coreml.cli import main

raise SystemExit(main())
