# SalesPulse. A newcomer needs two targets: `make demo` and `make test`; both set up what is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_HISTORY_DAYS ?= 35
DEMO_HISTORY_RATE ?= 0.1

# Spark's Python workers must run the venv's interpreter, not `python3` from PATH, which lacks the project's packages.
export PYSPARK_PYTHON := $(abspath $(BIN)/python)
export PYSPARK_DRIVER_PYTHON := $(abspath $(BIN)/python)

.PHONY: demo test test-unit bench lint notebook setup java browser clean-data help
.DEFAULT_GOAL := help

help:
	@echo "make demo   set up, then run SalesPulse on this machine (dashboard + simulator + stream live at once, history loaded beside them, then the model trains; Ctrl-C stops)"
	@echo "make test   set up, then run the whole test suite"
	@echo "make test-unit  the tests that need no JVM, browser or server (tests/unit, about a minute)"
	@echo "make bench  run the benchmarks and update BENCHMARKS.md"
	@echo "make lint   ruff over the code"
	@echo "make notebook LAKE=data/lake   run notebooks/explore.ipynb headless against a lake (executed copy in data/notebooks/)"
	@echo "make clean-data  delete everything under data/ but its README"

setup: $(STAMP) java

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 13) else "SalesPulse needs Python 3.10 to 3.13 (TensorFlow 2.21); found " + sys.version.split()[0] + ". Run with PYTHON=/path/to/python3.x")'
	@echo "setup: creating $(VENV) and installing SalesPulse with its dependencies (a few minutes the first time)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

# Spark 4 needs Java 17 or newer. Installed from Debian's packages when missing and we are root.
java:
	@if command -v java >/dev/null 2>&1 && java -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])'; then \
		true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "setup: installing Java 17 (openjdk-17-jre-headless) for Spark"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	else \
		echo "SalesPulse needs Java 17+ for Spark and cannot install it without root and apt-get." >&2; \
		echo "Install OpenJDK 17 (e.g. 'sudo apt-get install openjdk-17-jre-headless') or put it on PATH, then re-run." >&2; \
		exit 1; \
	fi

# The browser tests drive Debian's Chromium through its ChromeDriver; never a driver downloaded at run time.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then \
		true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "setup: installing Chromium and ChromeDriver (Debian chromium, chromium-driver) for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else \
		echo "The browser tests need /usr/bin/chromium and /usr/bin/chromedriver and cannot install them without root and apt-get." >&2; \
		echo "Install them (e.g. 'sudo apt-get install chromium chromium-driver'), then re-run." >&2; \
		exit 1; \
	fi

# The demo runs in its own folder, reset each time, so it never mixes with data you loaded yourself. Its
# history is long enough to train the forecast on (two weeks of lags + short validation and test splits).
DEMO_DIR := data/demo
# The demo's own accounts (in its own users file, reset with the demo): an administrator and a France-only user.
DEMO_ADMIN_PASSWORD ?= salespulse-demo
DEMO_FRANCE_PASSWORD ?= salespulse-france
DEMO_LOGINS = log in as demo / $(DEMO_ADMIN_PASSWORD) (admin, every country) or france / $(DEMO_FRANCE_PASSWORD) (France only)
demo: export SALESPULSE_PATHS__LANDING = $(DEMO_DIR)/landing
demo: export SALESPULSE_PATHS__LAKE = $(DEMO_DIR)/lake
demo: export SALESPULSE_PATHS__CHECKPOINTS = $(DEMO_DIR)/checkpoints
demo: export SALESPULSE_PATHS__ARCHIVE = $(DEMO_DIR)/archive
demo: export SALESPULSE_PATHS__MODELS = $(DEMO_DIR)/models
demo: export SALESPULSE_AUTH__USERS_FILE = $(DEMO_DIR)/users.json
demo: export SALESPULSE_MODEL__VALIDATION_DAYS = 3
demo: export SALESPULSE_MODEL__TEST_DAYS = 3
demo: export SALESPULSE_MODEL__MAX_MINUTES = 3
demo: export SALESPULSE_MODEL__THREADS = 1
demo: export TF_CPP_MIN_LOG_LEVEL = 2
demo: setup
	@echo "demo: 1/4 resetting $(DEMO_DIR)/ and writing $(DEMO_HISTORY_DAYS) days of history to $(DEMO_DIR)/landing/history"
	rm -rf $(DEMO_DIR)
	printf '%s\n' '$(DEMO_ADMIN_PASSWORD)' | $(BIN)/salespulse users add demo --admin --password-stdin
	printf '%s\n' '$(DEMO_FRANCE_PASSWORD)' | $(BIN)/salespulse users add france --countries France --password-stdin
	$(BIN)/salespulse simulate --history-days $(DEMO_HISTORY_DAYS) --history-rate $(DEMO_HISTORY_RATE) --quiet
	@echo "demo: 2/4 live first: the dashboard, the simulator (a file every second, at the history's rate) and the"
	@echo "      stream (one line per batch) start now, so live KPIs show within a minute or so; the history loads"
	@echo "      beside them ($(DEMO_DIR)/history-backfill.log), then the forecast model trains in the background"
	@echo "      ($(DEMO_DIR)/train.log) and the stream forecasts from the next batch after it is promoted."
	@echo "      Dashboard: its URL follows as soon as the lake has its first data; $(DEMO_LOGINS). Ctrl-C stops everything cleanly."
	@stop_tree() { for child in $$(pgrep -P $$1 2>/dev/null); do stop_tree $$child; done; kill -TERM $$1 2>/dev/null; }; \
	( until [ -f $(DEMO_DIR)/lake/_manifest.json ]; do sleep 1; done; exec $(BIN)/salespulse dashboard ) & dash=$$!; \
	$(BIN)/salespulse simulate --seconds 0 --rate $(DEMO_HISTORY_RATE) --quiet & sim=$$!; \
	( $(BIN)/salespulse backfill --input $(DEMO_DIR)/landing/history/sales --profile canonical \
			> $(DEMO_DIR)/history-backfill.log 2>&1 || { echo "demo: the sales history did not load: see $(DEMO_DIR)/history-backfill.log" >&2; exit 1; }; \
	  echo "demo: 3/4 the sales history is in the lake; KPIs by country, read from gold:"; \
	  $(BIN)/salespulse kpis --by country; \
	  echo "demo: 4/4 training the forecast model in the background; loading the inventory history"; \
	  nice -n 10 $(BIN)/salespulse train --quiet > $(DEMO_DIR)/train.log 2>&1 & \
	  $(BIN)/salespulse backfill --input $(DEMO_DIR)/landing/history/inventory --profile canonical_inventory \
			>> $(DEMO_DIR)/history-backfill.log 2>&1; \
	  wait ) & history=$$!; \
	trap 'stop_tree $$dash; stop_tree $$history' EXIT; \
	$(BIN)/salespulse stream; code=$$?; \
	kill -TERM $$sim 2>/dev/null; stop_tree $$history; wait $$sim $$history; \
	$(BIN)/salespulse kpis --by country; exit $$code

# pytest's own exit code decides: 5 (nothing collected) fails the run like any failure.
test: setup browser
	$(BIN)/python -m pytest

test-unit: setup
	$(BIN)/python -m pytest tests/unit

bench: setup
	$(BIN)/python bench/simulate_history.py
	$(BIN)/python bench/backfill_vs_duckdb.py
	$(BIN)/python bench/stream_sustained.py
	$(BIN)/python bench/train_model.py --workdir data/bench/train
	$(BIN)/python bench/score_throughput.py --workdir data/bench/train
	$(BIN)/python bench/dashboard_latency.py
	$(BIN)/python bench/ingest_api.py
	$(BIN)/python bench/dashboard_load.py

lint: setup
	$(BIN)/ruff check .

LAKE ?= data/lake
notebook: setup
	$(BIN)/python notebooks/run.py --lake $(LAKE)

clean-data:
	find data -mindepth 1 -maxdepth 1 ! -name README.md -exec rm -rf {} +
