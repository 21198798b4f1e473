# Quickstart: `make demo` (install + run the default pipeline), `make test` (install + tests).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export KEDRO_DISABLE_TELEMETRY := true

.PHONY: install demo run test lint viz browser postgres lock clean

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
# conf/local and writes into data/local/). Its backbone starts from the ImageNet weights when
# they can be downloaded (or are in Keras' cache), and otherwise from random weights, with a
# warning here and at the top of the report. `make demo BACKBONE_WEIGHTS=none` skips the try.
BACKBONE_WEIGHTS ?= auto
run: install
	@weights=$(BACKBONE_WEIGHTS); \
	if [ "$$weights" = auto ]; then weights=$$($(BIN)/python -m imgclf.models.imagenet_weights | tail -n 1); fi; \
	$(BIN)/kedro run --env base --params backbone.weights=$$weights

# The report's browser test needs a headless Chromium: Debian's package, installed as root.
browser:
	@command -v chromium-headless-shell >/dev/null || command -v chromium >/dev/null || \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		    chromium-headless-shell >/dev/null; } ; } || \
		echo "No headless Chromium (apt-get install chromium-headless-shell): the report's browser test will skip."

# The shared-study test starts a throwaway PostgreSQL server: Debian's package, as root.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		    postgresql >/dev/null; } ; } || \
		echo "No PostgreSQL server (apt-get install postgresql): the test of tuning workers on PostgreSQL will skip."

test: install browser postgres
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

viz: install
	$(BIN)/kedro viz run

# Re-resolves requirements.lock from pyproject.toml, with the dev, postgres and airflow extras, for
# Python 3.10-3.12 (needs uv).
lock:
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra postgres --extra airflow --universal --python-version 3.10 \
		--no-header --output-file requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
