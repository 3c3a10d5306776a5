# The two commands of the quick start are `make demo` and `make test`; both set everything up.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: setup packages build demo up down status test unit lint bench bench-flagger chaos clean crds image image-tools

setup: packages $(INSTALLED) build

packages:
	@tools/install-debian-packages.sh

# The controller's image, canary-delivery:<version>, from the Containerfile (docs/install.md).
image: packages $(INSTALLED)
	tools/build-image.sh

# Only helm and kustomize for the image, into .cache/image-tools: for building it with docker or podman yourself.
image-tools: $(INSTALLED)
	$(BIN)/canary local build --image-tools

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

build: $(INSTALLED)
	$(BIN)/canary local build

demo: setup
	$(BIN)/canary demo

up: setup
	$(BIN)/canary local up
	$(BIN)/canary local status

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
	$(BIN)/python -m bench.gitsync_noop
	$(BIN)/python -m bench.gitsync_scale

# Not part of the suite: our controller and Flagger side by side on a stack of their own, written to
# docs/benchmarks.md (builds Flagger from its Go module once, about 4 minutes). SIZES=10,100,1000 for more.
bench-flagger: setup
	$(BIN)/python -m bench.flagger $(if $(SIZES),--sizes $(SIZES)) $(if $(SHARDS),--shards $(SHARDS)) $(BENCH_FLAGGER_ARGS)

# Not part of the suite: kills, restarts and hangs on a stack of its own (docs/reliability.md).
chaos: setup
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

crds: $(INSTALLED)
	$(BIN)/python -m canary.models.crds manifests/crds
	cp manifests/crds/canaries.yaml manifests/crds/metrictemplates.yaml manifests/crds/alertproviders.yaml \
	  charts/canary-delivery/files/crds/

clean: $(INSTALLED)
	$(BIN)/canary local down --purge
	rm -rf .cache/local
