# pid-memory-inspector: `make` lists the targets. Needs only python3 (3.11+) and make;
# the analyses' packages go into .venv, reinstalled only when a requirements file changes.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
PIP := $(PY) -m pip install --quiet --disable-pip-version-check
CHECKED := scripts tests
DUMPS_DIR := dumps/time

.DEFAULT_GOAL := help
.PHONY: help demo run analyze-system analyze-processes report analyze compact bench test test-fast lint format clean clean-dumps

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

demo: $(RUN_STAMP)  ## Collect 5 real snapshots 2 s apart, run both analyses, write the report
	$(PY) scripts/collect_memory.py --interval 2 --count 5
	$(PY) scripts/analyze_system.py
	$(PY) scripts/analyze_processes.py
	$(PY) scripts/make_report.py
	@echo
	@echo "Snapshots:        dumps/time/sys_mem_*.csv, process_mem_*.csv and cgroup_mem_*.csv"
	@echo "System analysis:  plots/system/system_metrics.csv, forecast.json and plots/system/*.png"
	@echo "Process analysis: plots/processes/top10_rss_spread.csv, leaks.csv and plots/processes/*.png"
	@echo "All of it:        plots/report.html, one page to copy and open in a browser"

run:  ## Run the collector in the foreground (INTERVAL=seconds COUNT=n pass through)
	$(PYTHON) scripts/collect_memory.py $(if $(INTERVAL),--interval $(INTERVAL)) $(if $(COUNT),--count $(COUNT))

analyze-system: $(RUN_STAMP)  ## Analyse the system snapshots into plots/system
	$(PY) scripts/analyze_system.py

analyze-processes: $(RUN_STAMP)  ## Analyse the process snapshots into plots/processes
	$(PY) scripts/analyze_processes.py

report: $(RUN_STAMP)  ## Write both analyses into one self-contained page, plots/report.html
	$(PY) scripts/make_report.py

analyze: analyze-system analyze-processes  ## Run both analyses

compact:  ## Bundle each closed UTC day older than 2 days into dumps/time/mem_<day>.tar.xz (DAYS=n KEEP=m DRY_RUN=1)
	$(PYTHON) scripts/compact_dumps.py --dumps-dir $(DUMPS_DIR) $(if $(DAYS),--older-than-days $(DAYS)) $(if $(KEEP),--keep-days $(KEEP)) $(if $(DRY_RUN),--dry-run)

bench: $(RUN_STAMP)  ## Time both analyses against plain pandas on two months (YEAR=1: a year and its re-run after one new hour; REFERENCE=REV with YEAR: against an earlier commit)
	$(PY) tests/bench $(if $(YEAR),--year) $(if $(NO_BASELINE),--without-baseline) $(if $(REFERENCE),--reference $(REFERENCE))

test: lint  ## Lint, then run every test
	$(PY) -m pytest -q

test-fast: $(DEV_STAMP)  ## The edit loop, about a minute: every test but the slow and browser ones, on 2 cores
	HYPOTHESIS_PROFILE=fast $(PY) -m pytest -q -m "not slow and not browser" -n 2

lint: $(DEV_STAMP)  ## ruff, black --check and mypy --strict on scripts/ and tests/
	$(PY) -m ruff check $(CHECKED)
	$(PY) -m black --check --quiet $(CHECKED)
	$(PY) -m mypy $(CHECKED)

format: $(DEV_STAMP)  ## Fix imports and formatting in place
	$(PY) -m ruff check --fix --quiet $(CHECKED)
	$(PY) -m black --quiet $(CHECKED)

clean:  ## Delete what can be made again: analysis outputs, day summaries and caches (never the dumps)
	@n_plots=$$(find plots -mindepth 1 -type f ! -name .gitkeep | wc -l); \
	echo "clean: deleting $$n_plots file(s) in plots/, the day summaries in $(DUMPS_DIR)/.summaries, the benchmark data in .cache/ and tool caches"; \
	find plots -mindepth 1 -type f ! -name .gitkeep -delete; \
	rm -rf $(DUMPS_DIR)/.summaries .cache .mypy_cache .pytest_cache .ruff_cache .hypothesis; \
	find scripts tests -name __pycache__ -prune -exec rm -rf {} +; \
	echo "clean: the collected snapshots in $(DUMPS_DIR) are kept (make clean-dumps deletes them)"

clean-dumps:  ## Delete the collected snapshots (and their day summaries): says how many and which span, needs CONFIRM=yes
	@files=$$(find $(DUMPS_DIR) -maxdepth 1 -type f \( -name 'sys_mem_*.csv' \
		-o -name 'process_mem_*.csv' -o -name 'cgroup_mem_*.csv' -o -name 'mem_*.tar.xz' \)); \
	n=$$(printf '%s' "$$files" | grep -c .); \
	if [ "$$n" -eq 0 ]; then echo "clean-dumps: no snapshots in $(DUMPS_DIR)"; exit 0; fi; \
	stamps=$$(printf '%s\n' "$$files" | sed -E 's|.*_mem_([0-9]{8}_[0-9]{6})\.csv$$|\1|; s|.*/mem_([0-9]{8})\.tar\.xz$$|\1|' | sort); \
	pretty='s/^([0-9]{4})([0-9]{2})([0-9]{2})/\1-\2-\3/; s/_([0-9]{2})([0-9]{2})([0-9]{2})$$/ \1:\2:\3/'; \
	first=$$(printf '%s\n' "$$stamps" | head -n 1 | sed -E "$$pretty"); \
	last=$$(printf '%s\n' "$$stamps" | tail -n 1 | sed -E "$$pretty"); \
	span="from $$first to $$last UTC"; \
	if [ "$(CONFIRM)" != yes ]; then \
		echo "clean-dumps: $$n file(s) in $(DUMPS_DIR), snapshots $$span"; \
		echo "clean-dumps: nothing deleted; 'make clean-dumps CONFIRM=yes' deletes them"; \
		exit 0; \
	fi; \
	printf '%s\n' "$$files" | tr '\n' '\0' | xargs -0 rm -f --; \
	rm -rf $(DUMPS_DIR)/.summaries; \
	echo "clean-dumps: deleted $$n file(s) in $(DUMPS_DIR), snapshots $$span, and their day summaries"
