# Two commands on a fresh machine: `make demo` and `make test`. Each bootstraps what it needs.
.PHONY: demo test lint format lab bench lock sandbox-up sandbox-down clean

VENV := .venv/bin
PYTEST_ARGS ?=
# one pytest worker per core, each with its own sandbox (files stay whole on one worker, so a
# module's fixtures start once); TEST_WORKERS=0 runs the suite in a single process
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)

demo:
	scripts/bootstrap.sh
	$(VENV)/opslib demo

test:
	OPSLIB_WITH_BROWSER=1 OPSLIB_WITH_TEST_TOOLS=1 scripts/bootstrap.sh
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/lint-imports
	$(VENV)/python -m pytest tests -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint:
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/lint-imports

format:
	$(VENV)/ruff check --fix .
	$(VENV)/ruff format .

lab:
	scripts/bootstrap.sh
	scripts/lab.sh

bench:
	scripts/bootstrap.sh
	$(VENV)/python bench/runner_overhead.py
	$(VENV)/python bench/latency_triage.py
	$(VENV)/python bench/redrive.py
	$(VENV)/python bench/pitr_postgres.py
	$(VENV)/python bench/cur.py
	$(VENV)/python bench/backup_postgres.py
	$(VENV)/python bench/serve.py

# Refresh the locks from pyproject.toml's ranges (needs the network): requirements/dev.txt is
# what make demo, make test and CI install; requirements/core.txt is the production image's.
lock:
	scripts/lock.sh

sandbox-up:
	scripts/bootstrap.sh
	$(VENV)/opslib sandbox up

sandbox-down:
	$(VENV)/opslib sandbox down

clean: sandbox-down
	rm -rf .venv .pytest_cache .ruff_cache evidence .bench
