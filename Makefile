# Two commands: `make demo` (simulate a journey export, pull it, write reports) and `make test`.
# Each creates .venv when missing and installs cxlab with what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test benchmark clean-reports

$(BIN)/python:
	@echo "creating $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip

# setuptools ends every editable install with an InformationOnly notice ("Editable installation.
# Please be careful with folders ... with the same name as your package"): not about this
# project, so that one notice is filtered; its deprecation warnings are not (pyproject.toml has none).
EDITABLE := PYTHONWARNINGS="ignore:Editable installation:UserWarning" $(BIN)/python -m pip install --quiet -e

$(VENV)/.core: pyproject.toml | $(BIN)/python
	@echo "installing cxlab and what it needs into $(VENV) (once; about a minute)"
	@$(EDITABLE) .
	@touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	@echo "installing cxlab with its test tools into $(VENV) (once; about a minute)"
	@$(EDITABLE) '.[test]'
	@touch $(VENV)/.core $@

demo: $(VENV)/.core
	@$(BIN)/cxlab demo

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
