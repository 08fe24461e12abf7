# Two entry points for a fresh machine (see README): `make demo` and `make test`.
# Everything else is installed by the project's own files: Python deps into .venv (pinned in
# pyproject.toml), the stack's services by `scv stack up` (pinned in compose/versions.yaml).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SCV := $(BIN)/scv

.PHONY: install demo test faults lint unit integration bench bench-reads client-dist stack-up stack-down clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: install
	$(SCV) stack up
	$(SCV) demo run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

unit: install
	$(BIN)/pytest -q tests/unit

# The whole suite: lint, type check, start the local stack (installing it on first use), every test:
# unit, integration, then the fault-injection suite (tests/faults runs last: it restarts services).
test: install lint
	$(SCV) stack up
	$(BIN)/pytest tests/unit tests/integration tests/faults --durations=15

# The fault-injection suite alone: each case restarts or breaks something under load.
faults: install
	$(SCV) stack up
	$(BIN)/pytest tests/faults

# The benchmark report (bench/replicator.py): printed and written as markdown under bench/results/.
# Smaller runs: make bench BENCH_ARGS="--backfill-rows 200000 --no-reads"; see --help.
BENCH_ARGS ?=
bench: install
	$(SCV) stack up
	$(BIN)/python -m bench.replicator $(BENCH_ARGS)

# Whole-view read latency (client, async client, HTTP) against the bare driver, under a steady workload.
bench-reads: install
	$(SCV) stack up
	$(BIN)/python -m bench.reads

# The read client as its own wheel (clients/python): what an app installs.
client-dist: install
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation clients/python -w dist

stack-up: install
	$(SCV) stack up

stack-down: install
	$(SCV) stack down

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
