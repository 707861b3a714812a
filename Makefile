# fedimint-gw: every target sets up what it needs (the .venv and the project in it).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# lightningd runs the plugin with the venv's interpreter; pyln-testing needs RUST=0
# with a lightningd built without Rust (no cln-grpc plugin).
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export RUST ?= 0

.PHONY: all venv interop-deps test test-fast regtest regtest-stop bench lint format clean

all: test

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip check
	$(PY) -c "import coincurve, pyln.client, pyln.proto, bech32, aiohttp, aiosqlite"
	@touch $(STAMP)

venv: $(STAMP)

## make interop-deps: the official Fedimint client (npm) for tests/interop; skipped without npm
INTEROP_CLIENT := contrib/official_client/js
INTEROP_STAMP := $(INTEROP_CLIENT)/node_modules/.installed-stamp

$(INTEROP_STAMP): $(INTEROP_CLIENT)/package.json $(INTEROP_CLIENT)/package-lock.json
	npm ci --prefix $(INTEROP_CLIENT) --no-audit --no-fund
	@touch $@

interop-deps:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(INTEROP_STAMP); \
	else echo "interop-deps: npm not found: the official-client interop tests will be SKIPPED"; fi

## make test: every test (regtest tests run where lightningd and bitcoind are on PATH)
test: $(STAMP) interop-deps
	$(PY) -m pytest -ra --durations=15 tests

## make test-fast: everything but the regtest tests
test-fast: $(STAMP) interop-deps
	$(PY) -m pytest -ra -m "not regtest" tests

## make regtest: the local regtest network and its demo (official-client rows need interop-deps)
regtest: $(STAMP)
	@$(MAKE) --no-print-directory interop-deps || echo "regtest: interop-deps failed: the official-client demo rows will be SKIPPED"
	$(PY) -m contrib.regtest.launcher start

regtest-stop: $(STAMP)
	$(PY) -m contrib.regtest.launcher stop

bench: $(STAMP)
	$(PY) -m bench.run

lint: $(STAMP)
	$(PY) -m ruff check fedimint_gw plugin contrib tests fedimint-gw/fedimint-gw.py
	$(PY) -m ruff format --check fedimint_gw plugin contrib tests fedimint-gw/fedimint-gw.py
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(PY) -m ruff format fedimint_gw plugin contrib tests
	$(PY) -m ruff check --fix fedimint_gw plugin contrib tests

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
