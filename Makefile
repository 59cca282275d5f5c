# make demo: set up .venv and run natlens on bundled and generated logs.
# make test: set up .venv (and Java for Spark) and run the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench lock check-install clean

$(STAMP): requirements/dev.lock pyproject.toml
	./scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/dev.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/natlens demo .demo

test: $(STAMP)
	./scripts/system-deps.sh --with-java --with-chromium
	$(BIN)/ruff check natlens tests benchmarks scripts
	$(BIN)/ruff format --check natlens tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/python -m pytest -q --cov --cov-report=term:skip-covered

lint: $(STAMP)
	$(BIN)/ruff check natlens tests benchmarks scripts
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest_benchmark.py

# Re-pin every dependency, with hashes: runtime.lock from pyproject.toml's ranges, dev.lock from
# those plus the spark extra and requirements/dev.in (sharing runtime.lock's versions).
UV_COMPILE = .lockenv/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 --upgrade
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --quiet uv==0.13.9
	$(UV_COMPILE) pyproject.toml -o requirements/runtime.lock
	$(UV_COMPILE) pyproject.toml --extra spark requirements/dev.in -c requirements/runtime.lock \
		-o requirements/dev.lock
	rm -rf .lockenv

# What a user gets from `pip install .`: a fresh venv with the runtime lock only, then natlens.
check-install:
	./scripts/check-install.sh

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
