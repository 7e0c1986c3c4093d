"""Rule tables per ONNX Runtime release series, and the lookup that picks one."""

from __future__ import annotations

import re

from retinaface_coreml_toolchain.coverage.rules import ort_1_22, ort_1_23, ort_1_24, ort_1_32
from retinaface_coreml_toolchain.coverage.rules.table import RuleTable
from retinaface_coreml_toolchain.errors import ToolchainError

# Modelled tables, oldest first.
TABLES: dict[tuple[int, int], RuleTable] = {
    (1, 22): ort_1_22.TABLE,
    (1, 23): ort_1_23.TABLE,
    (1, 24): ort_1_24.TABLE,
    (1, 32): ort_1_32.TABLE,
}

# Which table answers each released series. `rules check` read every release's macOS wheel
# (builders, MLProgram and IsTrivial overrides, builder messages) against the tables:
# 1.25.0 is clean against the 1.24 table, 1.30.0 and 1.31.0 against the 1.32 table. 1.26 to 1.29
# match neither (1.26 adds one builder to 1.24, 1.27 four, 1.28 and 1.29 all of 1.32's builders
# but not all of its checks), so no table speaks for them and the predictor refuses them.
SERIES: dict[tuple[int, int], tuple[int, int]] = {
    (1, 22): (1, 22),
    (1, 23): (1, 23),
    (1, 24): (1, 24),
    (1, 25): (1, 24),
    (1, 30): (1, 32),
    (1, 31): (1, 32),
    (1, 32): (1, 32),
}
RELEASED = list(SERIES)
UNMODELLED = "1.26-1.29 match no table (`toolchain rules check 1.28.0` shows how)"


class UnknownOrtVersion(ToolchainError):
    """The requested ONNX Runtime version has no rule table."""


def modelled() -> list[str]:
    """e.g. ``["1.22", "1.23", "1.24", "1.32"]``."""
    return [table.version for table in TABLES.values()]


def parse_version(text: str) -> tuple[int, int]:
    """``"1.23.2"`` or ``"1.23"`` -> ``(1, 23)``."""
    match = re.fullmatch(r"\s*(\d+)\.(\d+)(?:\.\d+)?(?:[.+-]?\w*)\s*", text)
    if not match:
        raise UnknownOrtVersion(
            f"'{text}' is not an ONNX Runtime version (X.Y or X.Y.Z); "
            f"modelled: {', '.join(modelled())}"
        )
    return int(match.group(1)), int(match.group(2))


def table_for(version: str) -> RuleTable:
    """The newest table at or below ``version``; unknown or too old -> UnknownOrtVersion."""
    wanted = parse_version(version)
    if wanted not in SERIES:
        raise UnknownOrtVersion(
            f"no CoreML rule table for ONNX Runtime {version}; modelled: "
            f"{', '.join(modelled())} (1.25 uses the 1.24 table, 1.30 and 1.31 the 1.32 table; "
            f"{UNMODELLED})"
        )
    return TABLES[SERIES[wanted]]


def newest_at_or_below(wanted: tuple[int, int]) -> RuleTable:
    """The table of the newest modelled series at or below ``wanted``, released or not."""
    older = [key for key in TABLES if key <= wanted]
    if not older:
        raise UnknownOrtVersion(
            f"no CoreML rule table at or below ONNX Runtime {wanted[0]}.{wanted[1]}; "
            f"modelled: {', '.join(modelled())}"
        )
    return TABLES[max(older)]


def default_version(installed: str) -> str:
    """The installed onnxruntime's series if modelled, else the newest modelled table."""
    try:
        return table_for(installed).version
    except UnknownOrtVersion:
        return modelled()[-1]
