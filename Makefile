# Two commands for a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test lint install install-test interop

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# `rules install` fetches the official BIS validation rules with Maven (a no-op when the pinned ones are installed).
install: $(BIN)/python
	$(BIN)/pip install -q -e .
	$(BIN)/peppol-ap rules install

install-test: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/peppol-ap rules install

## Install everything and start the whole gateway on its embedded defaults (local environment): web server,
## background worker and the local SML with its DNS server, in one process tree that Ctrl-C stops.
run: install
	$(BIN)/peppol-ap run $(if $(PORT),--port $(PORT))

## Install what the tests need and run lint and the whole test suite; database tests run on SQLite and on a
## throwaway PostgreSQL that scripts/with-postgres.sh starts (needs `apt-get install postgresql`).
test: install-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	scripts/with-postgres.sh --install
	scripts/with-postgres.sh $(BIN)/pytest

## ruff, and the import-linter contracts that enforce the layers of DESIGN.md ([tool.importlinter] in pyproject.toml).
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/lint-imports

## Interop suite against independent implementations (phase4 peer: needs Java 17+ and Maven; downloads cached in ~/.m2).
interop: install-test
	$(BIN)/pytest -m interop tests/interop
