# make demo: set up .venv and run natlens on bundled and generated logs.
# make test: set up .venv (and Java for Spark) and run the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench lock clean

$(STAMP): requirements.lock pyproject.toml
	./scripts/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/natlens demo .demo

test: $(STAMP)
	./scripts/system-deps.sh --with-java
	$(BIN)/ruff check natlens tests benchmarks scripts
	$(BIN)/ruff format --check natlens tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check natlens tests benchmarks scripts
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest_benchmark.py

# Re-pin every dependency from requirements.in.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install --quiet -r requirements.in
	.lockenv/bin/pip freeze --exclude-editable | grep -v '^natlens' > requirements.lock
	rm -rf .lockenv

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
