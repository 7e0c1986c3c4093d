"""scripts/find_python.sh: the interpreter `make` builds venvs with, or one line and exit 1.

The interpreters on PATH are stand-ins (a shell script answering the version probe), so the
choice can be tested for versions this machine does not have; one real interpreter checks the
probe itself.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "scripts" / "find_python.sh"


def _path_with(tmp_path: Path, **minors: int) -> str:
    """A PATH holding fake interpreters, e.g. ``python3_10=10`` -> ``python3.10`` saying 10."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, minor in minors.items():
        fake = bin_dir / name.replace("_", ".")
        fake.write_text(f"#!/bin/sh\necho {minor}\n")
        fake.chmod(0o755)
    return str(bin_dir)  # the script needs nothing else: sh builtins only


def _run(path: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env={"PATH": path},
        check=False,
    )


def test_the_newest_fitting_python_on_path_is_chosen(tmp_path: Path) -> None:
    path = _path_with(tmp_path, python3=9, python3_11=11, python3_13=13, python3_15=15)
    done = _run(path)
    assert (done.returncode, done.stdout, done.stderr) == (0, "python3.13\n", "")
    done = _run(path, "--min", "3.11", "--max", "3.11")
    assert done.stdout == "python3.11\n"


def test_only_old_pythons_give_one_line_naming_what_to_install(tmp_path: Path) -> None:
    done = _run(_path_with(tmp_path, python3=9, python3_10=10))
    assert done.returncode == 1 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        "no Python 3.11 to 3.14 on PATH (found: python3 (3.9) python3.10 (3.10))"
    )
    assert "brew install python@3.13" in line and "PYTHON=" in line


def test_a_given_python_is_checked_the_same_way(tmp_path: Path) -> None:
    path = _path_with(tmp_path, python3_10=10, python3_12=12)
    assert _run(path, "python3.12").stdout == "python3.12\n"
    done = _run(path, "python3.10")
    assert done.returncode == 1
    assert done.stderr.startswith("PYTHON=python3.10 is 3.10; this needs Python 3.11 to 3.14")
    done = _run(path, "--min", "3.11", "--max", "3.11", "python3.12")
    assert done.returncode == 1 and "this needs Python 3.11:" in done.stderr


@pytest.mark.skipif(not (3, 11) <= sys.version_info[:2] <= (3, 14), reason="needs 3.11-3.14")
def test_the_version_probe_runs_a_real_interpreter(tmp_path: Path) -> None:
    bin_dir = tmp_path / "real"
    bin_dir.mkdir()
    name = f"python3.{sys.version_info[1]}"
    (bin_dir / name).symlink_to(shutil.which(sys.executable) or sys.executable)
    done = _run(str(bin_dir))
    assert (done.returncode, done.stdout) == (0, f"{name}\n")
