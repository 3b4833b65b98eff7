# The two set-up commands (see README): `make demo` and `make test`.
# Both create .venv on first use and install everything they need.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: install demo test lint format bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch is pinned: 2.13.0 is the local CPU wheel; never let pip pull a CUDA build.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[all,dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m modelseal.demo demo-output

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The registry tests also run against a real PostgreSQL: scripts/start-postgres.sh starts a
# throwaway cluster on 127.0.0.1 when the server binaries are there (CI installs them); without
# them those tests are skipped locally (CI sets MODELSEAL_REQUIRE_POSTGRES=1 so they cannot be).
# A cluster this target started is stopped when pytest ends (also on failure or Ctrl-C); a server
# that was already running, or one named by MODELSEAL_TEST_POSTGRES_URL, is left alone.
test: lint
	started="$$(mktemp)"; \
	trap 'scripts/stop-postgres.sh "$$started"; rm -f "$$started"' EXIT; \
	MODELSEAL_TEST_POSTGRES_URL="$${MODELSEAL_TEST_POSTGRES_URL:-$$(MODELSEAL_PG_STARTED_FILE="$$started" scripts/start-postgres.sh 2>/dev/null || true)}" \
		$(VENV)/bin/pytest -n 2 --dist loadfile

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The reference tools (picklescan, modelaudit) are installed next to modelseal; the boto stack
# the registry needs is pinned while they install (modelaudit would otherwise downgrade it).
bench: install
	$(PIP) freeze | grep -iE '^(boto3|botocore|s3transfer)==' > $(VENV)/bench-constraints.txt
	$(PIP) install -q -c $(VENV)/bench-constraints.txt -e '.[bench]'
	$(PY) -m bench $(BENCH)

clean:
	rm -rf $(VENV) demo-output test-output .pytest_cache .ruff_cache
