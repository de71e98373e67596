# pid-memory-inspector: `make` lists the targets. Needs only python3 (3.11+) and make;
# the analyses' packages go into .venv, reinstalled only when a requirements file changes.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
CHECKED := scripts tests

.DEFAULT_GOAL := help
.PHONY: help demo run analyze-system analyze-processes analyze bench test lint format clean

help:  ## List the targets
	@echo "pid-memory-inspector: make TARGET"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  \1\t\2/' | expand -t 22

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "pid-memory-inspector needs Python 3.11 or newer as $(PYTHON)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): requirements.txt | $(PY)
	$(PIP) -r requirements.txt
	@touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PIP) -r requirements-dev.txt
	@touch $@ $(RUN_STAMP)

demo: $(RUN_STAMP)  ## Collect 5 real snapshots 2 s apart, then run both analyses
	$(PY) scripts/collect_memory.py --interval 2 --count 5
	$(PY) scripts/analyze_system.py
	$(PY) scripts/analyze_processes.py
	@echo
	@echo "Snapshots:        dumps/time/sys_mem_*.csv, dumps/time/process_mem_*.csv"
	@echo "System analysis:  plots/system/system_metrics.csv and plots/system/*.png"
	@echo "Process analysis: plots/processes/top10_rss_spread.csv and plots/processes/rss_pid_*.png"

run:  ## Run the collector in the foreground (INTERVAL=seconds COUNT=n pass through)
	$(PYTHON) scripts/collect_memory.py $(if $(INTERVAL),--interval $(INTERVAL)) $(if $(COUNT),--count $(COUNT))

analyze-system: $(RUN_STAMP)  ## Analyse the system snapshots into plots/system
	$(PY) scripts/analyze_system.py

analyze-processes: $(RUN_STAMP)  ## Analyse the process snapshots into plots/processes
	$(PY) scripts/analyze_processes.py

analyze: analyze-system analyze-processes  ## Run both analyses

bench: $(RUN_STAMP)  ## Time both analyses against plain pandas on a month (YEAR=1: a year)
	$(PY) tests/benchmark.py $(if $(YEAR),--year) $(if $(NO_BASELINE),--without-baseline)

test: lint  ## Lint, then run the test suite
	$(PY) -m pytest -q

lint: $(DEV_STAMP)  ## ruff, black --check and mypy --strict on scripts/ and tests/
	$(PY) -m ruff check $(CHECKED)
	$(PY) -m black --check --quiet $(CHECKED)
	$(PY) -m mypy $(CHECKED)

format: $(DEV_STAMP)  ## Fix imports and formatting in place
	$(PY) -m ruff check --fix --quiet $(CHECKED)
	$(PY) -m black --quiet $(CHECKED)

clean:  ## Delete collected snapshots in dumps/time and outputs in plots/ (says what first)
	@n_dumps=$$(find dumps/time -mindepth 1 ! -name .gitkeep | wc -l); \
	n_plots=$$(find plots/system plots/processes -mindepth 1 ! -name .gitkeep | wc -l); \
	echo "clean: deleting $$n_dumps file(s) in dumps/time and $$n_plots in plots/"; \
	find dumps/time plots/system plots/processes -mindepth 1 ! -name .gitkeep -delete
