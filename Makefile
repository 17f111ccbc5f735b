# LiveRec: `make demo` serves the demo site with the whole stack; `make test` runs the suite.
# Both set everything up from a fresh clone (virtualenv, packages, embedded services).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PORT   ?= 8000

.PHONY: demo test install browser bench clean-stack peers peers-install peers-test

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

# Peers (bench/peers): RecBole 1.2.1's SASRec/GRU4Rec/BPR and implicit's ALS on LiveRec's split,
# each tuned on the validation split, in their own venv (RecBole's and implicit's dependencies
# stay out of the product's). One thread at nice 19; results cached in PEERS_OUT, so a rerun
# only prints. LIVEREC_REPORTS: recsys_evaluate --json reports to print beside them (README).
PEERS_VENV  ?= .venv-peers
PEERS_STAMP := $(PEERS_VENV)/.installed
PEERS_DATA  ?= /tmp/ml100k
PEERS_OUT   ?= bench/out/peers.json
PEERS_ARGS  ?=
LIVEREC_REPORTS ?=

peers-install: $(PEERS_STAMP)

$(PEERS_STAMP): bench/peers/requirements.txt bench/peers/requirements-nodeps.txt
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install -q --upgrade pip
	$(PEERS_VENV)/bin/pip install -q torch==2.13.0
	$(PEERS_VENV)/bin/pip install -q -r bench/peers/requirements.txt
	$(PEERS_VENV)/bin/pip install -q --no-deps -r bench/peers/requirements-nodeps.txt
	touch $(PEERS_STAMP)

peers: $(STAMP) $(PEERS_STAMP)
	$(BIN)/python -m bench.peers.movielens_csv $(PEERS_DATA)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice -n 19 $(PEERS_VENV)/bin/python -m bench.peers.run \
		--events $(PEERS_DATA)/EVENTS.csv --items $(PEERS_DATA)/ITEMS.csv --out $(PEERS_OUT) $(PEERS_ARGS)
	$(BIN)/python -m bench.peers.compare $(LIVEREC_REPORTS) --peers $(PEERS_OUT) --anchors

# The peers' end-to-end test (tiny synthetic data) in their venv; `make test` runs the rest of
# tests/bench/test_peers.py in the product's venv, where this one skips.
peers-test: $(PEERS_STAMP)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice -n 19 $(PEERS_VENV)/bin/python -m pytest -q --noconftest tests/bench/test_peers.py
