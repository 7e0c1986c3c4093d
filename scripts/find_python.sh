#!/bin/sh
# Print the Python interpreter to build a venv with: the newest python3.x on PATH whose version
# is within [--min, --max], or the one given as the last argument (checked the same way).
# Nothing found: one line on stderr naming what to install, exit 1.
#
#   scripts/find_python.sh                          # make models: 3.11 .. 3.14
#   scripts/find_python.sh --min 3.11 --max 3.11    # make zoo / compat on Linux (cp311 torch)
#   scripts/find_python.sh python3.12               # PYTHON=python3.12 given: check it only
#
# Why 3.11 .. 3.14: toolchain/pyproject.toml requires >= 3.11 (onnxruntime 1.32.0 and onnxsim
# 0.8.1 ship no cp310 wheels); PyPI lists cp311..cp314 wheels of every pinned binary package.
# Python-free on purpose: macOS's own python3 is 3.9, too old to run a helper written in Python.
set -u
min=3.11
max=3.14
given=
while [ $# -gt 0 ]; do
    case "$1" in
        --min) min=$2; shift 2 ;;
        --max) max=$2; shift 2 ;;
        *) given=$1; shift ;;
    esac
done
min_minor=${min#3.}
max_minor=${max#3.}

# The minor version of interpreter $1 (e.g. 13), or nothing when it does not run.
minor_of() {
    "$1" -c 'import sys; print(sys.version_info[1] if sys.version_info[0] == 3 else -1)' \
        2>/dev/null
}

fits() {
    m=$(minor_of "$1") || return 1
    [ -n "$m" ] && [ "$m" -ge "$min_minor" ] && [ "$m" -le "$max_minor" ]
}

if [ "$min" = "$max" ]; then want="Python $min"; else want="Python $min to $max"; fi

if [ -n "$given" ]; then
    if fits "$given"; then echo "$given"; exit 0; fi
    m=$(minor_of "$given")
    found=${m:+"3.$m"}
    echo "PYTHON=$given is ${found:-not a runnable Python}; this needs $want: install it (e.g. \`brew install python@3.13\`, \`apt install python3.11\`) or pass PYTHON=/path/to/python3.x" >&2
    exit 1
fi

minor=$max_minor
while [ "$minor" -ge "$min_minor" ]; do
    if command -v "python3.$minor" >/dev/null 2>&1 && fits "python3.$minor"; then
        echo "python3.$minor"
        exit 0
    fi
    minor=$((minor - 1))
done
if command -v python3 >/dev/null 2>&1 && fits python3; then echo python3; exit 0; fi

seen=
for candidate in python3 python3.9 python3.10; do
    m=$(minor_of "$candidate") && [ -n "$m" ] && seen="$seen $candidate (3.$m)"
done
echo "no $want on PATH (found:${seen:- none}); install one (macOS: \`brew install python@3.13\` or python.org; Debian/Ubuntu: \`apt install python3.11\`), or pass PYTHON=/path/to/python3.x" >&2
exit 1
