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

test: lint
	$(VENV)/bin/pytest -n 2 --dist loadfile

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PIP) install -q -e '.[bench]'
	$(PY) -m bench

clean:
	rm -rf $(VENV) demo-output test-output .pytest_cache .ruff_cache
