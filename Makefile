# The two commands a newcomer needs: `make demo` and `make test`. Both build .venv from nothing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# A second venv with every runtime dependency pinned to its declared floor (.ci/floors.py).
FLOORS_VENV := .venv-floors
FLOORS_STAMP := $(FLOORS_VENV)/.installed

.PHONY: demo test test-floors lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,rsa]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m binance_margin_async demo

lint: $(STAMP)
	$(VENV)/bin/ruff check binance_margin_async tests examples benchmarks
	$(VENV)/bin/ruff format --check binance_margin_async tests examples benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy binance_margin_async tests benchmarks examples

pytest: $(STAMP)
	$(VENV)/bin/pytest -q

test: lint typecheck pytest

$(FLOORS_STAMP): pyproject.toml .ci/floors.py
	test -x $(FLOORS_VENV)/bin/python || $(PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PYTHON) .ci/floors.py > $(FLOORS_VENV)/constraints.txt
	$(FLOORS_VENV)/bin/python -m pip install --quiet -c $(FLOORS_VENV)/constraints.txt -e '.[dev,rsa]'
	$(FLOORS_VENV)/bin/python .ci/floors.py --check
	touch $(FLOORS_STAMP)

# The suite on the oldest versions pyproject.toml allows (`make test` runs it on the latest).
test-floors: $(FLOORS_STAMP)
	$(FLOORS_VENV)/bin/python .ci/floors.py --check
	$(FLOORS_VENV)/bin/pytest -q

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,rsa,bench]'
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) $(FLOORS_VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
