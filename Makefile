# Tocsin: `make demo` starts a working example, `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed-stamp
DATA   ?= ./tocsin-data

.PHONY: install demo test test-sqlite lint typecheck bench bench-paging clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Tocsin needs Python 3.11 or newer"'
	@$(PYTHON) -m venv $(VENV) || { echo "python venv missing: apt-get install python3-venv"; exit 1; }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/tocsin demo --data-dir $(DATA) --config examples

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

bench-paging: install
	$(BIN)/python benchmarks/paging.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache .mypy_cache .ruff_cache
