"""Retag a wheel that ships a CoreML cache for the macOS and CPU it was built on.

A cache entry only matches one CPU architecture and macOS majors from the one it was built on, so
a wheel that carries entries must not claim ``py3-none-any``. The onnxruntime requirement stays
the admitted range (the runtime's ``onnxruntime>=`` floor in pyproject.toml): the entries are
keyed by ORT version, so an app pinned to another release only misses the cache and compiles once
in the background, and the wheel still
installs beside it. ``RETINAFACE_COREML_PIN_ORT=1`` (``make models PIN_ORT=1``) opts into
``Requires-Dist: onnxruntime==<the entries' version>`` for teams that want a guaranteed hit; it
needs entries of one release. This does what ``python -m wheel tags --platform-tag
macosx_14_0_arm64 --remove`` does without the dependency and byte-stable: the members keep their
order, timestamps and modes; only ``WHEEL`` (and, pinned, ``METADATA``), their ``RECORD`` lines
and the file name change.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from retinaface_coreml_toolchain.errors import PackageError

MANIFEST_MEMBER = "retinaface_coreml/models/manifest.json"
PIN_ENV = "RETINAFACE_COREML_PIN_ORT"
"""``1`` pins the macOS wheel to the entries' onnxruntime (``make models PIN_ORT=1``)."""


def pin_requested(env: Mapping[str, str]) -> bool:
    """Whether ``RETINAFACE_COREML_PIN_ORT`` asks for the exact pin (``1``, ``true``, ``yes``)."""
    return env.get(PIN_ENV, "").strip().lower() in {"1", "true", "yes"}


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


def version_key(text: str) -> tuple[int, ...]:
    """e.g. ``"1.23.2"`` -> ``(1, 23, 2)``, so that 1.9 sorts before 1.23."""
    return tuple(int(part) if part.isdigit() else 0 for part in text.split("."))


def shipped_ort_versions(files: Mapping[str, str]) -> list[str]:
    """The ORT releases the manifest's entries are for, e.g. ``["1.23.2", "1.32.0"]``."""
    found = {PurePosixPath(rel).parts[1] for rel in files if rel.startswith("coreml/")}
    return sorted(found, key=version_key)


def retag_for_cache(wheel: Path, *, env: Mapping[str, str] = os.environ) -> Path:
    """Rewrite ``wheel`` with the platform tag its shipped cache needs; return the new path.

    e.g. ``dist/retinaface_coreml-0.1.0-py3-none-any.whl`` ->
    ``dist/retinaface_coreml-0.1.0-py3-none-macosx_14_0_arm64.whl`` (the old file is removed).
    """
    wheel = Path(wheel)
    with zipfile.ZipFile(wheel) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    contents = {info.filename: data for info, data in members}
    try:
        manifest = json.loads(contents[MANIFEST_MEMBER])
        models = manifest["models"].values()  # schema 2
        cache = next((m["precompile"] for m in models if m["coreml_cache"]), {})
        tag = platform_tag(str(cache["macos_major"]), str(cache["machine"]))
        ort_versions = shipped_ort_versions(manifest.get("files", {}))
    except (KeyError, ValueError, TypeError) as exc:
        raise PackageError(f"{wheel}: no CoreML cache record to tag it from ({exc!r})") from None
    pin = pin_requested(env)
    if pin and len(ort_versions) != 1:
        wheel.unlink()  # a wheel with entries must not stay behind as py3-none-any
        raise PackageError(
            f"{wheel}: {PIN_ENV} pins one onnxruntime, but the wheel ships entries for "
            f"{', '.join(ort_versions) or 'none'}; build it without the pin"
        )
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
    replaced = {wheel_member: new_wheel}
    if pin:
        replaced[metadata_member] = pin_onnxruntime(
            contents[metadata_member], ort_versions[0], wheel
        )
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
