# Two commands on a fresh machine (Python 3.11, Java 17, make):
#   make demo   set up .venv, build the demo mesh end to end, serve the UIs
#   make test   set up .venv, run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export PIP_DISABLE_PIP_VERSION_CHECK := 1
SHELL := /bin/bash
# pip warns once per package about index locations a machine's pip config names but
# lacks; they are the machine's, not ours: drop exactly those lines, keep the rest.
PIP_MACHINE_NOISE := ^WARNING: Location '[^']*' is ignored: it is neither a file nor a directory\.$$

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	set -o pipefail; $(BIN)/python -m pip install -q -c requirements.lock -e ".[dev]" 2>&1 \
		| { grep -Ev "$(PIP_MACHINE_NOISE)" || true; }
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mesh demo

test: $(STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -n 2

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python bench/refresh.py --rows 1000000

clean:
	rm -rf $(VENV) .mesh
