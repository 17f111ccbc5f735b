# LiveRec: `make demo` serves the demo site with the whole stack; `make test` runs the suite.
# Both set everything up from a fresh clone (virtualenv, packages, embedded services).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8000

.PHONY: demo test install browser bench clean-stack

install: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first: this pin takes the local CPU build instead of a multi-GB CUDA download.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

# Debian's Chromium for the browser tests (never a browser downloaded by playwright).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

demo: $(STAMP)
	PORT=$(PORT) $(BIN)/python -m devstack demo

test: $(STAMP) browser
	$(BIN)/python -m devstack run -- $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python -m devstack run -- $(BIN)/python $$b || exit 1; done

clean-stack:
	rm -rf .stack
