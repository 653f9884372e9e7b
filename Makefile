# Conveyor — `make demo` runs the product on ./conveyor.db, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench load lint install browser clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required (looked for $(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the end-to-end test (browsers cannot be downloaded by Playwright here).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing Debian's chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

demo: $(STAMP)
	$(BIN)/conveyor --db sqlite:///conveyor.db --config conveyor.toml demo

test: $(STAMP) browser
	$(BIN)/python -m pytest -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/conveyor bench

# Issue 4's load run at full length: 10,000 deals changing for one minute on SQLite (one engine), then
# on a scratch PostgreSQL database with two engines; rates in test-output/load.json.
load: $(STAMP)
	$(BIN)/python -m benchmarks.load --seconds 60

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) conveyor.db conveyor.db-wal conveyor.db-shm test-output
