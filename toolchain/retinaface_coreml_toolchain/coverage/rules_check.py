"""`rules check`: diff one release's CoreML EP binary against the rule table that answers for it.

The facts compared are the ones a table states as lists and the binary shows by name (see
ep_binary.py for how, and what it cannot see): the op-builder families, the families that build
MLProgram, the families with an ``IsTrivial`` override, and the builders' log/error strings.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from retinaface_coreml_toolchain.coverage.ep_binary import EpFacts, read_wheel
from retinaface_coreml_toolchain.coverage.ort_wheel import check_version, macos_wheel
from retinaface_coreml_toolchain.coverage.rules import (
    RELEASED,
    SERIES,
    TABLES,
    newest_at_or_below,
    parse_version,
)
from retinaface_coreml_toolchain.coverage.rules.table import RuleTable
from retinaface_coreml_toolchain.errors import ToolchainError

# Builder class (without "OpBuilder") -> the table's family name; the rest are lower-cased.
FAMILY_OF_CLASS = {"BatchNormalization": "batchnorm"}
# A gone string this similar to a new one is reported as one changed string.
CHANGED_RATIO = 0.6


class RulesStale(ToolchainError):
    """The release's binary disagrees with the table the predictor would use."""

    return_code = 1


@dataclass(frozen=True, kw_only=True)
class FactDiff:
    """One fact's difference: in the binary only (new), in the table only (gone), or reworded."""

    fact: str
    new: tuple[str, ...] = ()
    gone: tuple[str, ...] = ()
    changed: tuple[tuple[str, str], ...] = ()

    @property
    def clean(self) -> bool:
        return not (self.new or self.gone or self.changed)


@dataclass(frozen=True, kw_only=True)
class RulesCheck:
    """The record `rules check` prints (text or --json)."""

    ort_version: str
    table: str
    wheel: str
    predictor_accepts: bool
    counts: dict[str, int]
    diffs: tuple[FactDiff, ...]

    @property
    def stale(self) -> bool:
        return any(not d.clean for d in self.diffs)

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["stale"] = self.stale
        return record


def family(builder_class: str) -> str:
    """``"BatchNormalization"`` -> ``"batchnorm"``, ``"GatherND"`` -> ``"gathernd"``."""
    return FAMILY_OF_CLASS.get(builder_class, builder_class.lower())


def table_facts(table: RuleTable) -> dict[str, frozenset[str]]:
    """The table's side of each compared fact, in family names."""
    return {
        "builders": frozenset(table.builders.values()),
        "mlprogram": frozenset(table.mlprogram),
        "trivial": frozenset(table.builders[op] for op in table.trivial),
        "messages": frozenset(table.messages),
    }


def binary_facts(facts: EpFacts) -> dict[str, frozenset[str]]:
    """The binary's side of each compared fact, in family names."""
    return {
        "builders": frozenset(map(family, facts.builders)),
        "mlprogram": frozenset(map(family, facts.mlprogram)),
        "trivial": frozenset(map(family, facts.trivial)),
        "messages": facts.messages,
    }


def diff_fact(fact: str, table: frozenset[str], binary: frozenset[str]) -> FactDiff:
    """New and gone entries; for strings, a gone one close to a new one counts as changed."""
    new, gone = sorted(binary - table), sorted(table - binary)
    changed: list[tuple[str, str]] = []
    if fact == "messages":
        for old in list(gone):
            ratio, best = max(
                ((difflib.SequenceMatcher(None, old, text).ratio(), text) for text in new),
                default=(0.0, ""),
            )
            if ratio >= CHANGED_RATIO:
                changed.append((old, best))
                gone.remove(old)
                new.remove(best)
    return FactDiff(fact=fact, new=tuple(new), gone=tuple(gone), changed=tuple(changed))


def compare(version: str, table: RuleTable, facts: EpFacts, *, wheel: str) -> RulesCheck:
    """The record for ``facts`` (read from ``wheel``) against ``table``."""
    ours, theirs = table_facts(table), binary_facts(facts)
    return RulesCheck(
        ort_version=version,
        table=table.version,
        wheel=wheel,
        predictor_accepts=parse_version(version) in RELEASED,
        counts={fact: len(values) for fact, values in theirs.items()},
        diffs=tuple(diff_fact(fact, ours[fact], theirs[fact]) for fact in ours),
    )


def check_release(version: str, *, download_dir: Path | None = None) -> RulesCheck:
    """Download ``version``'s macOS wheel (cached), read it, diff it against its table."""
    wanted = parse_version(check_version(version))
    # The table the predictor uses for that series, else the newest below it (what a new
    # release would be compared with before anyone maps it).
    table = TABLES[SERIES[wanted]] if wanted in SERIES else newest_at_or_below(wanted)
    wheel = macos_wheel(version, download_dir=download_dir)
    return compare(version, table, read_wheel(wheel), wheel=wheel.name)


def check_stale(check: RulesCheck) -> None:
    """Raise RulesStale (exit 1) when the table disagrees with the binary."""
    if check.stale:
        what = ", ".join(
            f"{d.fact} +{len(d.new)} -{len(d.gone)} ~{len(d.changed)}"
            for d in check.diffs
            if not d.clean
        )
        raise RulesStale(
            f"the {check.table} rule table is stale for onnxruntime {check.ort_version} "
            f"({what}); model the changes in coverage/rules/ and run the check again"
        )


def render(record: dict[str, Any]) -> str:
    """The text view of a RulesCheck record."""
    verdict = "STALE" if record["stale"] else "clean"
    counts = ", ".join(f"{n} {fact}" for fact, n in record["counts"].items())
    lines = [
        f"onnxruntime {record['ort_version']} ({record['wheel']}) against the "
        f"{record['table']} rule table: {verdict}",
        f"  read from the binary: {counts}",
    ]
    for entry in record["diffs"]:
        if not (entry["new"] or entry["gone"] or entry["changed"]):
            lines.append(f"  {entry['fact']}: same")
            continue
        lines.append(
            f"  {entry['fact']}: {len(entry['new'])} new, {len(entry['gone'])} gone, "
            f"{len(entry['changed'])} changed"
        )
        lines += [f"    + {text!r}" for text in entry["new"]]
        lines += [f"    - {text!r}" for text in entry["gone"]]
        lines += [f"    ~ {old!r} -> {new!r}" for old, new in entry["changed"]]
    if not record["predictor_accepts"]:
        lines.append(
            f"  note: the predictor refuses {record['ort_version']} (no released series in "
            "coverage/rules SERIES); map it there to the table this check comes out clean against"
        )
    return "\n".join(lines)
