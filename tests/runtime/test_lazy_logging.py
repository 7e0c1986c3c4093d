"""LazyLogger: no ``logging`` import for records nobody could see; plain records otherwise."""

from __future__ import annotations

import inspect
import logging
import subprocess
import sys
import threading

from retinaface_coreml.lazy_logging import get_logger


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )


def test_debug_and_info_before_logging_is_imported_import_nothing() -> None:
    done = run(
        "import sys\n"
        "from retinaface_coreml.lazy_logging import get_logger\n"
        "log = get_logger('retinaface_coreml.x')\n"
        "log.debug('d %s', 1); log.info('i %s', 2)\n"
        "print('logging' in sys.modules)"
    )
    assert done.stdout.strip() == "False"
    assert done.stderr == ""


def test_a_warning_without_any_logging_setup_still_reaches_stderr() -> None:
    done = run(
        "import sys\n"
        "from retinaface_coreml.lazy_logging import get_logger\n"
        "get_logger('retinaface_coreml.x').warning('bucket %s runs on the CPU', '384x640')\n"
        "print('logging' in sys.modules)"
    )
    assert done.stdout.strip() == "True"
    assert done.stderr.strip() == "bucket 384x640 runs on the CPU"  # logging.lastResort


def test_records_name_the_caller_once_logging_is_loaded(caplog) -> None:
    log = get_logger("retinaface_coreml.test")
    with caplog.at_level(logging.DEBUG, logger="retinaface_coreml.test"):
        line = inspect.currentframe().f_lineno + 1
        log.debug("opened %s", "384x640")
        log.info("served %s", "cpu")
        log.warning("refused %s", "x", stacklevel=1)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.DEBUG, "opened 384x640"),
        (logging.INFO, "served cpu"),
        (logging.WARNING, "refused x"),
    ]
    assert [(r.filename, r.lineno) for r in caplog.records] == [
        ("test_lazy_logging.py", line),
        ("test_lazy_logging.py", line + 1),
        ("test_lazy_logging.py", line + 2),
    ]
    assert all(r.name == "retinaface_coreml.test" for r in caplog.records)


def test_warning_once_warns_once_per_key_across_threads(caplog) -> None:
    log = get_logger("retinaface_coreml.test_once")
    with caplog.at_level(logging.WARNING, logger="retinaface_coreml.test_once"):
        threads = [
            threading.Thread(target=log.warning_once, args=((h, 640), "%dx640: no bucket", h))
            for h in (480, 480, 480, 720, 720)
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    messages = sorted(r.getMessage() for r in caplog.records)
    assert messages == ["480x640: no bucket", "720x640: no bucket"]
    assert all(r.filename == "threading.py" for r in caplog.records)  # the caller: Thread.run
