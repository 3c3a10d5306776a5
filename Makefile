# The two commands of the quick start are `make demo` and `make test`; both set everything up.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: setup packages build demo down status test unit lint bench clean

setup: packages $(INSTALLED) build

packages:
	@tools/install-debian-packages.sh

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

build: $(INSTALLED)
	$(BIN)/canary local build

demo: setup
	$(BIN)/canary local up
	$(BIN)/canary local status
	@echo 'The stack keeps running. Point kubectl at it with: eval "$$($(BIN)/canary local status | grep ^export)"'
	@echo 'Stop it with: make down'

down: $(INSTALLED)
	$(BIN)/canary local down

status: $(INSTALLED)
	$(BIN)/canary local status

test: setup
	$(BIN)/pytest

unit: $(INSTALLED)
	$(BIN)/pytest tests/unit

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup
	$(BIN)/python -m bench.local_stack 3

clean: down
	rm -rf .cache/local
