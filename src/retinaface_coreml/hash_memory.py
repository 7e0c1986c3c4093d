"""sha256 of files, remembered across processes, keyed by file version: hash a big file once.

A caller's model file (is it a packaged source?) and the package's own files (do they match the
manifest?) are each hashed once per file version, not once per process: MTL's 100 MB take
longer to hash than a session takes to open. What was hashed is kept in this process and in
``<cache root>/file-hashes.json`` (the CoreML cache's root, ``RETINAFACE_COREML_CACHE_DIR``).

A version is (realpath, st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns). Any write, rename
over, ``chmod`` or ``os.utime`` sets the ctime to now, and no user can set it back, so a
changed or replaced file never matches what was remembered of its old bytes. A file changed
within the last ``SETTLE_NS`` is hashed but not remembered: timestamps tick coarsely (a jiffy on
Linux), so a second write in the same tick would keep the ctime.

The memory is optional, as pip's cache is: a missing, corrupt or unwritable file means "not
remembered" and a full hash, never a failure. It holds at most ``MAX_ENTRIES`` versions, the
oldest dropped first; writes are atomic (``atomic.py``), the last writer wins.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, NamedTuple, TypeVar

from retinaface_coreml.lazy_logging import get_logger
from retinaface_coreml.user_cache import cache_root

log = get_logger(__name__)

MEMORY_NAME = "file-hashes.json"
FORMAT = 1
MAX_ENTRIES = 256
MAX_BYTES = 1 << 20
"""A memory file larger than this is not read: it is taken for corrupt."""
SETTLE_NS = 1_000_000_000
MIN_BYTES = 8 << 20
"""Smaller files are remembered in this process only: hashing RetinaFace's 1.7 MB bucket
(2-6 ms here) costs less than finding the memory (importing platformdirs alone took 12-37 ms
on this shared machine); hashing MTL's 100 MB takes 200 ms or more."""
CHUNK = 1 << 20

T = TypeVar("T")
_HEX = frozenset("0123456789abcdef")
_lock = threading.Lock()
_known: dict[str, str] = {}
hash_count = 0
"""How many files this process hashed in full (the tests count with it)."""


# A NamedTuple: cheap to define on the startup path (see the package docstring).
class FileVersion(NamedTuple):
    """One version of one file, e.g. ``/m/mtl.onnx`` dev 2049 inode 1312 103 MB, its times."""

    realpath: str
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, realpath: str, stat: os.stat_result) -> FileVersion:
        return cls(
            realpath=realpath,
            dev=stat.st_dev,
            ino=stat.st_ino,
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            ctime_ns=stat.st_ctime_ns,
        )

    @property
    def key(self) -> str:
        """e.g. ``"2049:1312:103114569:1733480000123456789:1733480000123456789:/m/mtl.onnx"``."""
        return f"{self.dev}:{self.ino}:{self.size}:{self.mtime_ns}:{self.ctime_ns}:{self.realpath}"

    def settled(self, now_ns: int) -> bool:
        """Changed at least ``SETTLE_NS`` before ``now_ns``: a later write gets a new ctime."""
        return max(self.mtime_ns, self.ctime_ns) <= now_ns - SETTLE_NS


def memory_path() -> Path:
    """e.g. ``~/Library/Caches/retinaface-coreml/file-hashes.json``."""
    return cache_root() / MEMORY_NAME


def _read_memory(path: Path) -> dict[str, str]:
    """The remembered digests by version key; empty when absent, unreadable or malformed."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            return {}
        record = json.loads(raw)
        entries = record["entries"] if record.get("format") == FORMAT else {}
        return {k: v for k, v in entries.items() if isinstance(k, str) and _is_digest(v)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        if not isinstance(exc, FileNotFoundError):
            log.debug("%s: not used (%s)", path, exc)
        return {}


def _is_digest(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def recall(version: FileVersion) -> str | None:
    """The sha256 remembered for exactly this version, from this process or the memory file."""
    with _lock:
        known = _known.get(version.key)
    if known is not None or version.size < MIN_BYTES:
        return known
    try:
        found = _read_memory(memory_path()).get(version.key)
    except Exception as exc:  # the memory is optional: never fail a lookup
        log.debug("hash memory unavailable (%s)", exc)
        return None
    if found is not None:
        with _lock:
            _known[version.key] = found
    return found


def remember(version: FileVersion, digest: str) -> None:
    """Keep ``digest`` for this version, here and (best effort) in the memory file."""
    with _lock:
        _known[version.key] = digest
    if version.size < MIN_BYTES:
        return
    from retinaface_coreml.atomic import write_bytes

    try:
        path = memory_path()
        entries = _read_memory(path)
        entries.pop(version.key, None)
        entries[version.key] = digest  # newest last: the oldest are dropped first
        kept = dict(list(entries.items())[-MAX_ENTRIES:])
        data = json.dumps({"format": FORMAT, "entries": kept}, indent=0).encode()
        write_bytes(path, data, mode=0o600)
    except Exception as exc:  # a read-only or full cache directory: this process remembers
        log.debug("hash memory not written (%s)", exc)


def sha256_stream(handle: BinaryIO) -> str:
    """sha256 hex digest of what is left to read in ``handle``, in 1 MiB chunks."""
    import hashlib  # here, not at import: 4-5 ms of OpenSSL that a remembered file never needs

    sha = hashlib.sha256()
    for chunk in iter(lambda: handle.read(CHUNK), b""):
        sha.update(chunk)
    return sha.hexdigest()


def _hashed(digest: str, version: FileVersion | None) -> None:
    """Count a full hash; remember ``digest`` for ``version`` (None: not to be remembered)."""
    global hash_count
    with _lock:
        hash_count += 1
    if version is not None:
        remember(version, digest)


def _rememberable(before: FileVersion, after: FileVersion, started: int) -> FileVersion | None:
    """The version a digest computed from ``started`` on may be remembered for: None when the
    file changed meanwhile, or so recently that a later write could keep its timestamps."""
    return before if after == before and before.settled(started) else None


class _Hashing:
    """The sha256 of ``data``, computed on a thread started now; ``result()`` waits for it and
    remembers it for ``version`` (None: not to be remembered)."""

    def __init__(self, data: bytes, version: FileVersion | None) -> None:
        self._version = version
        self._digest = ""
        self._error: BaseException | None = None
        self._done = False
        self._thread = threading.Thread(
            target=self._hash, args=(data,), name="retinaface-coreml-sha256", daemon=True
        )
        self._thread.start()

    def _hash(self, data: bytes) -> None:
        try:
            import hashlib

            self._digest = hashlib.sha256(data).hexdigest()  # releases the GIL
        except BaseException as exc:  # re-raised by result(), on the caller's thread
            self._error = exc

    def result(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise self._error
        if not self._done:
            self._done = True
            _hashed(self._digest, self._version)
        return self._digest


def read_hashing(path: Path) -> tuple[bytes, Callable[[], str]]:
    """The file's bytes, read once, and a call returning their sha256: recalled for this version,
    or computed on a thread started now, so that the caller can use the bytes (e.g. build an
    onnxruntime session from them) while they are hashed, then check. The version is the open
    file's own (``fstat``) before and after the read: the digest is of the bytes returned, with
    no swap between the check and the use. Raises OSError."""
    realpath = os.path.realpath(path)
    with open(realpath, "rb") as handle:
        before = FileVersion.of(realpath, os.fstat(handle.fileno()))
        known = recall(before)
        started = time.time_ns()
        data = handle.read()
        after = FileVersion.of(realpath, os.fstat(handle.fileno()))
    if known is not None and after == before:
        return data, lambda: known
    return data, _Hashing(data, _rememberable(before, after, started)).result


def _stream_digest(path: Path) -> str:
    """The file's sha256, recalled for this version or computed as it streams by (not kept)."""
    realpath = os.path.realpath(path)
    with open(realpath, "rb") as handle:
        before = FileVersion.of(realpath, os.fstat(handle.fileno()))
        known = recall(before)
        if known is not None:
            return known
        started = time.time_ns()
        digest = sha256_stream(handle)
        after = FileVersion.of(realpath, os.fstat(handle.fileno()))
    _hashed(digest, _rememberable(before, after, started))
    return digest


def _fd_path(fd: int) -> str | None:
    """A path that opens the file behind ``fd`` itself, whatever its name now points at."""
    for folder in ("/proc/self/fd", "/dev/fd"):  # Linux; macOS and the BSDs
        if os.path.isdir(folder):
            return f"{folder}/{fd}"
    return None


def load_known(
    path: Path, expected: str, load: Callable[[str], T], otherwise: Callable[[], T]
) -> T:
    """``load(p)``, ``p`` a path to the open file, when this version of it is remembered to
    hash to ``expected`` and did not change while it loaded: no read, no hash. Else (and when
    it cannot be opened) ``otherwise()``, which reads and hashes it. Raises what they raise."""
    realpath = os.path.realpath(path)
    try:
        handle = open(realpath, "rb")  # noqa: SIM115 (held while ``load`` runs)
    except OSError:
        return otherwise()
    with handle:
        fd_path = _fd_path(handle.fileno())
        before = FileVersion.of(realpath, os.fstat(handle.fileno()))
        if fd_path is not None and recall(before) == expected:
            loaded = load(fd_path)
            if FileVersion.of(realpath, os.fstat(handle.fileno())) == before:
                return loaded
            # Written while it loaded: what was loaded is unknown, and dropped.
    return otherwise()


def file_sha256(path: Path) -> str:
    """sha256 hex digest of the file at ``path``, hashed once per version; raises OSError."""
    return _stream_digest(path)


def read_hashed(path: Path) -> tuple[bytes, str]:
    """The file's bytes and their sha256, hashed once per version; raises OSError."""
    data, digest = read_hashing(path)
    return data, digest()
