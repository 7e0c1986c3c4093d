"""Small binary-like blobs shaped as the macOS onnxruntime binary is where ep_binary reads it."""

from __future__ import annotations

import struct
import zipfile
from collections.abc import Iterable
from pathlib import Path

from retinaface_coreml_toolchain.coverage.ep_binary import CPU_TYPE_ARM64, FAT_MAGIC
from retinaface_coreml_toolchain.coverage.rules.table import RuleTable

CPU_TYPE_X86_64 = 0x01000007
IMPL = "/Users/runner/work/1/s/onnxruntime/core/providers/coreml/builders/impl/"
ARG = "ERKNSt3__112basic_stringIcNS1_11char_traitsIcEENS1_9allocatorIcEEEE"


def class_name(family: str) -> str:
    """A builder class for a table family; ep_binary lower-cases it back (batchnorm aside)."""
    return "BatchNormalization" if family == "batchnorm" else family.capitalize()


def symbol(cls: str, method: str) -> str:
    """e.g. ``__ZNK11onnxruntime6coreml12PadOpBuilder17SupportsMLProgramEv``."""
    name = f"{cls}OpBuilder"
    return f"__ZNK11onnxruntime6coreml{len(name)}{name}{len(method)}{method}Ev"


def blob(
    *,
    builders: Iterable[str],
    mlprogram: Iterable[str] = (),
    trivial: Iterable[str] = (),
    messages: Iterable[str] = (),
) -> bytes:
    """A Mach-O-like image: a string table region of builder strings, then symbol names."""
    texts = sorted(messages)
    half = len(texts) // 2
    cstrings = [
        "Some earlier object's message",  # before the region: not read
        f"{IMPL}activation_op_builder.cc",
        *texts[:half],
        "relu",  # no space: an op or MIL name, not a message
        "onnxruntime::coreml::Foo(const std::string &)",  # a function signature
        "/Users/runner/work/1/s/onnxruntime/core/framework/tensor.h",  # inlined: region goes on
        f"{IMPL}where_op_builder.cc",
        *texts[half:],
        "/Users/runner/work/1/s/onnxruntime/core/providers/coreml/builders/model_builder.cc",
        "A model builder message, after the region",
    ]
    symbols = [f"__ZN11onnxruntime6coreml{len(c) + 15}Create{c}OpBuilder{ARG}" for c in builders]
    symbols += [symbol(c, "SupportsMLProgram") for c in mlprogram]
    symbols += [symbol(c, "IsTrivial") for c in trivial]
    symbols += [
        symbol("Base", "SupportsMLProgram"),
        "__ZNK11onnxruntime6coreml10IOpBuilder9IsTrivialE",
    ]
    return (
        b"\xcf\xfa\xed\xfe" + bytes(range(256)) + b"\x00"
        + "\x00".join(cstrings).encode() + b"\x00" + b"\xff" * 64 + b"\x00"
        + "\x00".join(symbols).encode() + b"\x00"
    )  # fmt: skip


def table_blob(table: RuleTable) -> bytes:
    """The blob a release matching ``table`` exactly would be."""
    return blob(
        builders=map(class_name, set(table.builders.values())),
        mlprogram=map(class_name, table.mlprogram),
        trivial={class_name(table.builders[op]) for op in table.trivial},
        messages=table.messages,
    )


def fat(arm64: bytes, x86_64: bytes) -> bytes:
    """A universal binary holding both slices (x86_64 first, as the 1.22 wheels have it)."""
    header = FAT_MAGIC + struct.pack(">I", 2)
    first = 8 + 2 * 20
    entries = struct.pack(">iiIII", CPU_TYPE_X86_64, 3, first, len(x86_64), 0)
    entries += struct.pack(">iiIII", CPU_TYPE_ARM64, 0, first + len(x86_64), len(arm64), 0)
    return header + entries + x86_64 + arm64


def write_wheel(path: Path, image: bytes) -> Path:
    """A wheel-shaped zip holding ``image`` as the pybind module."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("onnxruntime/capi/onnxruntime_pybind11_state.so", image)
        archive.writestr("onnxruntime/__init__.py", "")
    return path
