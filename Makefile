# Conveyor — `make demo` runs the product on ./conveyor.db, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench load lint install browser wrk clean i18n translations

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

# Debian's wrk for the HTTP ingest benchmark (a C load generator: the Python one takes a good part of a
# core from the server it measures on two cores; without wrk the benchmark falls back to it).
wrk:
	@if [ ! -x /usr/bin/wrk ]; then \
		echo "installing Debian's wrk for the HTTP benchmark"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	fi

demo: $(STAMP) translations
	$(BIN)/conveyor --db sqlite:///conveyor.db --config conveyor.toml demo

# Two workers: most tests wait on subprocesses, sockets and the databases, so two share the cores well.
PYTEST_WORKERS ?= 2
test: $(STAMP) browser translations
	$(BIN)/python -m pytest -p no:cacheprovider -n $(PYTEST_WORKERS)

bench: $(STAMP) wrk
	$(BIN)/conveyor bench

# Issue 4's load run at full length: 10,000 deals changing for one minute on SQLite (one engine), then
# on a scratch PostgreSQL database with two engines; rates in test-output/load.json.
load: $(STAMP)
	$(BIN)/python -m benchmarks.load --seconds 60

# Interface text: `make i18n` extracts every _()/N_() string into the template and merges it into the
# uk and en catalogues (translate the new entries, then commit the .po files); `translations` compiles them.
LOCALES := engine/locale
POT := $(LOCALES)/conveyor.pot
i18n: $(STAMP)
	$(BIN)/pybabel -q extract -F babel.cfg -k _ -k N_ -k ngettext:1,2 --no-location --sort-output -o $(POT) .
	$(BIN)/pybabel -q update -i $(POT) -d $(LOCALES) -D conveyor --no-fuzzy-matching --ignore-obsolete

translations: $(STAMP)
	$(BIN)/pybabel -q compile -d $(LOCALES) -D conveyor

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) conveyor.db conveyor.db-wal conveyor.db-shm test-output
