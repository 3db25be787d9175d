# Two commands: `make demo` (simulate a journey export, pull it, write reports) and `make test`.
# Each creates .venv when missing and installs cxlab with what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test benchmark clean-reports

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.core $@

demo: $(VENV)/.core
	$(BIN)/cxlab demo

test: $(VENV)/.test
	$(BIN)/python -m pytest

benchmark: $(VENV)/.test
	$(BIN)/python benchmarks/pull.py
	$(BIN)/python benchmarks/pull_memory.py
	$(BIN)/python benchmarks/funnel.py
	$(BIN)/python benchmarks/dropoff.py
	$(BIN)/python benchmarks/sentiment.py
	$(BIN)/python benchmarks/report.py
	$(BIN)/python benchmarks/widgets.py

clean-reports:
	rm -rf reports/20*
