"""Retag a wheel that ships a CoreML cache for the macOS and onnxruntime it was built with.

A cache entry only matches one ORT version, one CPU architecture and macOS majors from the one it
was built on, so a wheel that carries one must not claim ``py3-none-any``, and must not let pip
pick another onnxruntime: ORT never invalidates an entry, so the runtime uses one only for the
exact version that built it (spec §5.4), and any other version would compile on first use. This
does what ``python -m wheel tags --platform-tag macosx_14_0_arm64 --remove`` does, plus pinning
``Requires-Dist: onnxruntime==<build version>`` in ``METADATA``, without the dependency and
byte-stable: the members keep their order, timestamps and modes; only ``WHEEL``, ``METADATA``,
their ``RECORD`` lines and the file name change.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

from retinaface_coreml_toolchain.errors import PackageError

MANIFEST_MEMBER = "retinaface_coreml/models/manifest.json"

# platform.machine() on macOS -> the wheel tag's architecture.
_ARCH = {"arm64": "arm64", "aarch64": "arm64", "x86_64": "x86_64"}


def platform_tag(macos_major: str, machine: str) -> str:
    """e.g. ``("14", "arm64")`` -> ``"macosx_14_0_arm64"`` (installable on macOS 14 and later)."""
    arch = _ARCH.get(machine.lower())
    if not macos_major.isdigit() or arch is None:
        raise PackageError(f"cannot make a macOS wheel tag from macOS {macos_major!r}, {machine!r}")
    return f"macosx_{macos_major}_0_{arch}"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


# "onnxruntime>=1.21" but not "onnxruntime-extensions" or "onnxruntime_genai".
_ORT_REQUIREMENT = re.compile(r"Requires-Dist: onnxruntime\s*([<>=!~;(\[]|$)")


def pin_onnxruntime(metadata: bytes, ort_version: str, wheel: Path) -> bytes:
    """``Requires-Dist: onnxruntime>=1.21`` -> ``Requires-Dist: onnxruntime==1.32.0``."""
    lines = metadata.decode().split("\n")
    # Only the runtime's own requirement; an extra's ("...; extra == 'build'") stays as it is.
    found = [
        i for i, line in enumerate(lines) if _ORT_REQUIREMENT.match(line) and "extra ==" not in line
    ]
    if len(found) != 1:
        raise PackageError(f"{wheel}: METADATA has {len(found)} onnxruntime requirements, not 1")
    lines[found[0]] = f"Requires-Dist: onnxruntime=={ort_version}"
    return "\n".join(lines).encode()


def retag_for_cache(wheel: Path) -> Path:
    """Rewrite ``wheel`` with the platform tag its shipped cache needs; return the new path.

    e.g. ``dist/retinaface_coreml-0.1.0-py3-none-any.whl`` ->
    ``dist/retinaface_coreml-0.1.0-py3-none-macosx_14_0_arm64.whl`` (the old file is removed).
    """
    wheel = Path(wheel)
    with zipfile.ZipFile(wheel) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    contents = {info.filename: data for info, data in members}
    try:
        models = json.loads(contents[MANIFEST_MEMBER])["models"].values()  # schema 2
        cache = next((m["precompile"] for m in models if m["coreml_cache"]), {})
        tag = platform_tag(str(cache["macos_major"]), str(cache["machine"]))
        ort_version = str(cache["ort_version"])
    except (KeyError, ValueError, TypeError) as exc:
        raise PackageError(f"{wheel}: no CoreML cache record to tag it from ({exc!r})") from None
    name, version, *_ = wheel.name[: -len(".whl")].split("-")
    dist_info = f"{name}-{version}.dist-info"
    wheel_member, record_member = f"{dist_info}/WHEEL", f"{dist_info}/RECORD"
    metadata_member = f"{dist_info}/METADATA"
    if not {wheel_member, record_member, metadata_member} <= contents.keys():
        raise PackageError(f"{wheel}: no {wheel_member}, METADATA or RECORD; not a wheel")
    old_wheel = contents[wheel_member]
    lines: list[str] = []
    for line in old_wheel.decode().splitlines():
        if line.startswith("Tag: "):
            python, abi, _ = line[len("Tag: ") :].split("-")
            line = f"Tag: {python}-{abi}-{tag}"
            if line in lines:
                continue
        lines.append(line)
    new_wheel = ("\n".join(lines) + "\n").encode()
    new_metadata = pin_onnxruntime(contents[metadata_member], ort_version, wheel)
    replaced = {wheel_member: new_wheel, metadata_member: new_metadata}
    record = []
    for row in contents[record_member].decode().splitlines():
        member = row.split(",", 1)[0]
        if member in replaced:
            row = f"{member},{_record_hash(replaced[member])},{len(replaced[member])}"
        record.append(row)
    replaced[record_member] = ("\n".join(record) + "\n").encode()
    # The file name's last field is the platform: ``...-py3-none-any`` -> ``...-py3-none-<tag>``.
    target = wheel.with_name(f"{wheel.name[: -len('.whl')].rsplit('-', 1)[0]}-{tag}.whl")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w") as out:
            for info, data in members:
                out.writestr(info, replaced.get(info.filename, data))
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if target != wheel:
        wheel.unlink()
    return target
