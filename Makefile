# The two commands: `make run` and `make test`. Both set the machine up themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help setup run test test-unit soak bench lint fmt typecheck clean

help:
	@echo "make run        set up, migrate, start the API on :8080 and a worker"
	@echo "make test       set up and run the whole test suite (real Postgres, Redis, worker; then embedded)"
	@echo "make test-unit  only the fast unit tests (no services)"
	@echo "make soak       the long soak tests (100,000 files, a longer API fuzz)"
	@echo "make bench      benchmarks (see bench/)"
	@echo "make lint       ruff check + format check + mypy + layer contracts"
	@echo "make fmt        ruff format + autofix"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# PYTHONWARNINGS: setuptools' editable-install notice is for package authors, not for users
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

run: setup
	@bash scripts/run.sh

# Everything on Postgres + Redis, then the end-to-end and HTTP tests again in the
# embedded mode (SQLite + filesystem broker), as a fresh `make run` runs.
test: setup
	@bash scripts/ensure-browser.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	ATTUNE_TEST_MODE=embedded $(BIN)/python -m pytest tests/e2e tests/integration $(PYTEST_ARGS)

test-unit: setup
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

soak: setup
	ATTUNE_FUZZ_EXAMPLES=$${ATTUNE_FUZZ_EXAMPLES:-100} $(BIN)/python -m pytest --soak -m "soak or e2e" $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/run.py $(BENCH_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_layers.py

typecheck: setup
	$(BIN)/mypy

fmt: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
