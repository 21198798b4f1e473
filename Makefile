# Quickstart: `make demo` (install + run the default pipeline), `make test` (install + tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export KEDRO_DISABLE_TELEMETRY := true

.PHONY: install demo run test lint viz lock clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))' || \
		{ echo "imgclf needs Python 3.10-3.12; $(PYTHON) is $$($(PYTHON) -V). Try: make PYTHON=python3.12 ..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs the pinned dependencies from requirements.lock, then the project itself.
$(VENV)/.installed: $(BIN)/python requirements.lock pyproject.toml
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

demo: install run

# The demo runs the base environment alone, into data/ (plain `kedro run` adds your
# conf/local and writes into data/local/). It runs offline: its backbones start from random
# weights. With a network, `make demo BACKBONE_WEIGHTS=imagenet` uses the ImageNet weights.
BACKBONE_WEIGHTS ?= none
run: install
	$(BIN)/kedro run --env base --params backbone.weights=$(BACKBONE_WEIGHTS)

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

viz: install
	$(BIN)/kedro viz run

# Re-resolves requirements.lock from pyproject.toml for Python 3.10-3.12 (needs uv).
lock:
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.10 \
		--no-header --output-file requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
