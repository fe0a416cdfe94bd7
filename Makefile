# sflab — every target bootstraps .venv by itself (only Python 3.11 + pip needed).
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export QT_QPA_PLATFORM ?= offscreen
export MPLBACKEND ?= Agg
# pyvisa-py needs no NI-VISA; keep numba's cache inside the venv so runs stay reproducible
export NUMBA_CACHE_DIR ?= $(CURDIR)/$(VENV)/numba-cache
# bytecode is cached (__pycache__, git-ignored) even where the environment turns it off (container images often
# set PYTHONDONTWRITEBYTECODE): otherwise every test worker and every sflab subprocess compiles the project's
# modules and pytest rewrites every test module again (≈ 4 s CPU per process)
unexport PYTHONDONTWRITEBYTECODE
PYTEST_ARGS ?=

.PHONY: all demo test test-all lint bench gui venv clean

all: test

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or make PYTHON=/path/to/python3.11)"; exit 2; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@# compile the numba kernels once into the venv's cache: otherwise every test worker and subprocess that
	@# starts before the first has written it compiles them again (~8 s CPU each)
	$(PY) -c 'import analysis, simulators.tags; analysis.warm_kernels(); simulators.tags.warm_kernels()'
	@# an editable install leaves the project's own modules uncompiled (pip compiles what it copies)
	$(PY) -m compileall -q acq drivers simulators procedures analysis gui benchmarks
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sflab demo

lint: $(STAMP)
	$(VENV)/bin/ruff check acq drivers simulators procedures analysis gui tests benchmarks
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

# make test skips the tests marked slow (pull studies, the GUI memory study, the overnight kill-and-resume,
# the fault campaign's three link faults (test_transient_faults_are_survived covers those on every role),
# the second demo: they would take it past 5 minutes on 2 cores); make test-all runs everything
# A hung test can never hold CI: each test has its own timeout (pyproject: timeout_method = thread, so a
# hang inside C code or a Qt event loop is cut too; xdist names the test, the stack dump stays in the
# worker), and the whole
# pytest run is cut after 30 min (the suite takes 3.4 min beside two CPU hogs on 2 cores, 2.1 min idle: fresh clones, 4 December 2026). Three workers on two cores:
# the suite waits on sockets, subprocesses and Qt for a quarter of its time, which a third worker fills. A worker cut by its
# timeout is not replaced (--max-worker-restart=0): under --dist loadfile xdist can stall for ever after
# replacing a crashed worker (pytest-xdist issues 784, 1313), and the crashed test is reported by name.
test: lint
	timeout --kill-after=30 1800 $(VENV)/bin/pytest -n 3 --dist loadfile --no-loadscope-reorder --max-worker-restart=0 -m "not slow" --durations=15 $(PYTEST_ARGS)

test-all: lint
	$(VENV)/bin/pytest -n 3 --dist loadfile --no-loadscope-reorder --max-worker-restart=0 --durations=15 $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m benchmarks $(BENCH_ARGS)

gui: $(STAMP)
	$(VENV)/bin/sflab gui

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
