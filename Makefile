# Narrate: two commands on a fresh machine — `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export NARRATE_DATA_DIR ?= ./narrate-data

.PHONY: run test lint typecheck unit bench clean install install-dev docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Set everything up and start Narrate on http://127.0.0.1:8000 (SQLite + ./narrate-data).
run: install
	$(BIN)/narrate db upgrade
	$(BIN)/narrate serve --host $(HOST) --port $(PORT)

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: install-dev
	$(BIN)/mypy

## Lint, type-check and run every test (unit, integration on SQLite + PostgreSQL, e2e).
test: lint typecheck
	$(BIN)/pytest -n 2 --dist loadgroup

unit: install-dev
	$(BIN)/pytest tests/unit -n 2

## Benchmarks; results land in bench/results/*.json
bench: install-dev
	$(BIN)/pip install --quiet -e '.[bench]'
	test -x .venv-ydata/bin/python || ($(PYTHON) -m venv .venv-ydata && .venv-ydata/bin/pip install --quiet ydata-profiling)
	test -x bench/.venv-mlflow/bin/mlflow || ($(PYTHON) -m venv bench/.venv-mlflow && bench/.venv-mlflow/bin/pip install --quiet mlflow py-spy && bench/.venv-mlflow/bin/pip install --quiet -e .)
	test -x bench/.venv-evidently/bin/evidently || ($(PYTHON) -m venv bench/.venv-evidently && bench/.venv-evidently/bin/pip install --quiet evidently "pandas<3" pyarrow)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/drift.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

## Regenerate docs/cli.md from the commands' --help texts (a test checks it is current).
docs: install-dev
	$(BIN)/typer narrate.cli utils docs --name narrate --output docs/cli.md
