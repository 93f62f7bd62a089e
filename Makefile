# The two commands a newcomer needs: `make demo` and `make test`. Both build .venv from nothing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean

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

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,rsa,bench]'
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
