# Two commands do everything: `make run` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test check lint format bench clean install install-test

run: $(VENV)/.installed  ## install, build or update the index from corpus/, serve on http://$(HOST):$(PORT)
	$(BIN)/qa serve --ingest --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test  ## install with test dependencies and run the whole suite
	$(BIN)/pytest

check: $(VENV)/.installed-test  ## lint, format check, strict typing and the import layers
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(VENV)/.installed-test  ## latency figures for the README
	$(BIN)/python bench/latency.py

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first, pinned to the CPU build (constraints.txt), so nothing pulls a multi-GB CUDA build.
$(VENV)/.installed: $(VENV)/bin/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt torch
	$(BIN)/pip install --quiet -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache test-artifacts
