"""Retag a wheel that ships a CoreML cache for the macOS it was built on.

A cache entry only matches one ORT version, macOS major and CPU architecture, so a wheel that
carries one must not claim ``py3-none-any``. This does what ``python -m wheel tags
--platform-tag macosx_14_0_arm64 --remove`` does, without the dependency and byte-stable: the
members keep their order, timestamps and modes; only ``WHEEL``, its ``RECORD`` line and the
file name change.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

from toolchain.errors import PackageError

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
        cache = json.loads(contents[MANIFEST_MEMBER])["coreml_cache"]
        tag = platform_tag(str(cache["macos_major"]), str(cache["machine"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise PackageError(f"{wheel}: no CoreML cache record to tag it from ({exc!r})") from None
    name, version, *_ = wheel.name[: -len(".whl")].split("-")
    dist_info = f"{name}-{version}.dist-info"
    wheel_member, record_member = f"{dist_info}/WHEEL", f"{dist_info}/RECORD"
    if wheel_member not in contents or record_member not in contents:
        raise PackageError(f"{wheel}: no {wheel_member} or {record_member}; not a wheel")
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
    record = []
    for row in contents[record_member].decode().splitlines():
        if row.split(",", 1)[0] == wheel_member:
            row = f"{wheel_member},{_record_hash(new_wheel)},{len(new_wheel)}"
        record.append(row)
    new_record = ("\n".join(record) + "\n").encode()
    # The file name's last field is the platform: ``...-py3-none-any`` -> ``...-py3-none-<tag>``.
    target = wheel.with_name(f"{wheel.name[: -len('.whl')].rsplit('-', 1)[0]}-{tag}.whl")
    replaced = {wheel_member: new_wheel, record_member: new_record}
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
