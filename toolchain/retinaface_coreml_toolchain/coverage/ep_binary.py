"""Read the CoreML EP's facts out of a macOS onnxruntime wheel by scanning the binary's bytes.

Method (pure Python, no disassembler): the macOS wheels keep local symbols (spec §0), so the
mangled names in the symbol string table say which op-builder classes exist
(``onnxruntime::coreml::Create<Name>OpBuilder``) and which classes override ``SupportsMLProgram``
or ``IsTrivial``. The builders' log strings sit together in ``__cstring``: ld64 lays literals out
per object file in link order, and ``builders/impl/*.cc`` link one after another, so the strings
from the first ``.../coreml/builders/impl/`` path to the next non-builder source path are theirs.

Limits, said plainly:
* op types are not read: the factory builds each name as a libc++ short string from immediates
  (``mov``/``movk`` then stores), so no string table holds them; builder classes are compared;
* a string an earlier object file also uses is stored once, before the region, and is missed;
  the first builder file's strings that precede its path are missed too;
* an override's presence is read, not its return value: every ``SupportsMLProgram`` override in
  1.22.1-1.32.0 returns true (spec §3.1), and ``IsTrivial`` may depend on the op (Unary: Ceil
  only, spec §2.3), which the table states per op type.
"""

from __future__ import annotations

import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from retinaface_coreml_toolchain.errors import ToolchainError

# Mach-O universal ("fat") header and the arm64 CPU type (mach/machine.h).
FAT_MAGIC = b"\xca\xfe\xba\xbe"
CPU_TYPE_ARM64 = 0x0100000C

BUILDER_PATH = b"/providers/coreml/builders/impl/"
_CREATE = re.compile(rb"6coreml\d+Create(\w+?)OpBuilderE")
# Methods whose override is a table fact, e.g.
# ZNK11onnxruntime6coreml12PadOpBuilder17SupportsMLProgramEv
_OVERRIDE = re.compile(rb"6coreml\d+(\w+?)OpBuilder\d+(SupportsMLProgram|IsTrivial)E")
_CSTRING = re.compile(rb"([\x20-\x7e\t\n]*)\x00")
_SOURCE = re.compile(r"^\S*/\S+\.(cc|h|mm)$")  # a __FILE__: /Users/runner/.../model_builder.cc
# Base classes, not builders: IOpBuilder (the interface) and BaseOpBuilder.
_NOT_BUILDERS = frozenset({"I", "Base"})


class BinaryError(ToolchainError):
    """The wheel holds no macOS binary with the CoreML EP in it."""


@dataclass(frozen=True, kw_only=True)
class EpFacts:
    """What one release's binary says about its CoreML EP (class names without "OpBuilder")."""

    builders: frozenset[str]
    mlprogram: frozenset[str]
    trivial: frozenset[str]
    messages: frozenset[str]


def read_wheel(wheel: Path) -> EpFacts:
    """The EP facts of ``wheel``'s ``onnxruntime/capi/onnxruntime_pybind11_state*.so``."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [
                n
                for n in archive.namelist()
                if re.search(r"/onnxruntime_pybind11_state[^/]*\.so$", n)
            ]
            if not names:
                raise BinaryError(
                    f"{wheel.name}: no onnxruntime_pybind11_state*.so inside; pass a macOS "
                    "onnxruntime wheel"
                )
            data = archive.read(names[0])
    except zipfile.BadZipFile as exc:
        raise BinaryError(
            f"{wheel}: not a wheel ({exc}); delete it from the download folder and run again"
        ) from exc
    return read_binary(data, name=f"{wheel.name}:{names[0]}")


def read_binary(data: bytes, *, name: str = "binary") -> EpFacts:
    """The EP facts of a Mach-O image (the arm64 slice of a universal one)."""
    image = arm64_slice(data, name=name)
    builders = {m.decode() for m in _CREATE.findall(image)} - _NOT_BUILDERS
    if not builders:
        raise BinaryError(f"{name}: no CoreML op builders found; is this a macOS wheel?")
    overrides: dict[str, set[str]] = {"SupportsMLProgram": set(), "IsTrivial": set()}
    for cls, method in _OVERRIDE.findall(image):
        overrides[method.decode()].add(cls.decode())
    return EpFacts(
        builders=frozenset(builders),
        mlprogram=frozenset(overrides["SupportsMLProgram"] - _NOT_BUILDERS),
        trivial=frozenset(overrides["IsTrivial"] - _NOT_BUILDERS),
        messages=frozenset(text for text in builder_strings(image, name=name) if is_message(text)),
    )


def arm64_slice(data: bytes, *, name: str = "binary") -> bytes:
    """The arm64 image of a universal binary (1.22 and older ship universal2), else ``data``."""
    if data[:4] != FAT_MAGIC:
        return data
    (count,) = struct.unpack_from(">I", data, 4)
    for index in range(count):
        cputype, _sub, offset, size, _align = struct.unpack_from(">iiIII", data, 8 + 20 * index)
        if cputype == CPU_TYPE_ARM64:
            return data[offset : offset + size]
    raise BinaryError(f"{name}: a universal binary without an arm64 slice")


def builder_strings(image: bytes, *, name: str = "binary") -> list[str]:
    """The C strings from the first builders/impl path to the next other source path."""
    first = image.find(BUILDER_PATH)
    last = image.rfind(BUILDER_PATH)
    if first < 0:
        raise BinaryError(f"{name}: no CoreML builder source paths in the string table")
    start = image.rfind(b"\x00", 0, first) + 1
    strings: list[str] = []
    for match in _CSTRING.finditer(image, start):
        text = match.group(1).decode("ascii")
        if match.start() > last and _SOURCE.match(text) and BUILDER_PATH.decode() not in text:
            break
        strings.append(text)
        if len(strings) > 100_000:  # an unterminated region: not the layout this reads
            raise BinaryError(f"{name}: the CoreML builder strings have no end")
    return strings


def is_message(text: str) -> bool:
    """A log or error text: has a space; not a source path or a function signature."""
    return " " in text.strip() and not text.startswith("/") and "onnxruntime::" not in text
