# Every target installs what it needs into .venv and is safe to run again.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHIORI := $(VENV)/bin/shiori
SETUP_STAMP := $(VENV)/.setup-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
PYTEST_ARGS ?=
NOTES ?= notes/
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BROWSER_DEBS := chromium fonts-ipafont-gothic

comma := ,
.PHONY: help setup browser models llm run serve eval test test-fast lint format bench bench-embed bench-ingest bench-retrieval bench-serve bench-load bench-followup bench-answer bench-store train-verifier clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: $(SETUP_STAMP)  ## create .venv with Shiori and its tools (CPU torch, never CUDA)

$(SETUP_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev,bench]"
	@rm -f $(VENV)/.setup-* && touch $@

models: setup  ## download, assemble and verify the default models (cached in ~/.cache/shiori)
	$(SHIORI) models pull

llm: models  ## serve the default answer model with vLLM's CPU build (own env in ~/.cache/shiori)
	$(SHIORI) llm serve

run: models  ## ingest NOTES (default: the bundled samples in notes/), start vLLM (CPU) and the API on 127.0.0.1:8000; Ctrl-C stops both
	$(SHIORI) ingest $(NOTES)
	@if [ "$(NOTES)" = "notes/" ]; then \
	  echo "Note: the bundled SAMPLE notes (notes/) are now in the store, and answers to your own"; \
	  echo "questions can cite them alongside your notes. To forget them: $(SHIORI) remove notes/"; \
	  echo "To start with only your notes: $(SHIORI) remove notes/ && make run NOTES=~/my-notes"; \
	fi
	$(SHIORI) up

eval: models  ## the bundled golden set through the real model, ragas on 5; fails below eval/thresholds.toml
	$(SHIORI) llm setup
	$(SHIORI) eval run --start-llm --ingest notes/ --judge 5 --report reports/notes --thresholds eval/thresholds.toml

serve: models  ## only the API (the LLM runs elsewhere: SHIORI_LLM_URL)
	$(SHIORI) serve

browser:  ## Debian's Chromium and a Japanese font, for the web page's browser tests (apt, once)
	@dpkg -s $(BROWSER_DEBS) >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(BROWSER_DEBS) >/dev/null; }

test: models browser  ## every test, the slow real-model ones included (what CI runs)
	$(SHIORI) llm setup
	$(PY) -m pytest --durations=40 $(PYTEST_ARGS)

test-fast: setup  ## only the fast tests (no model loads)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: setup  ## ruff (lint + format check), mypy, and the import layers (import-linter)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

train-verifier: models  ## re-create the grounding verifier's adapter (shiori/verifier/) from JSQuAD, seeded (~30 min, 2 cores)
	$(PY) -m train.verifier --squad $(or $(SQUAD),../shared/data/jsquad/valid-v1.3.json) $(ARGS)

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: bench-embed bench-ingest bench-retrieval bench-serve bench-load bench-followup bench-answer bench-store  ## all benchmarks (figures go to docs/benchmarks.md; bench-store prints its table)

bench-embed: models  ## embedding tokens/s per option (batching, attention, autocast, compile) vs the CPU's limit
	$(PY) bench/bench_embed.py --write docs/benchmarks.md

bench-ingest: models  ## ingest throughput vs a plain LlamaIndex pipeline, JSQuAD + notes/ (ARGS="--limit 400")
	$(PY) bench/bench_ingest.py $(ARGS) --write docs/benchmarks.md

bench-retrieval: models  ## dense / sparse / fused retrieval quality and latency on JSQuAD
	$(PY) bench/sparse_jsquad.py
	$(PY) bench/retrieval_jsquad.py --write docs/benchmarks.md

bench-serve: models  ## index latency at 10k/100k chunks; /v1/search, /v1/ask, TTFT vs vLLM
	$(SHIORI) llm setup
	$(PY) bench/bench_serve.py --write docs/benchmarks.md

bench-load: models  ## loopback load: 16 /v1/search clients 60 s, 4 /v1/ask clients 5 min; p95, memory (soak: ARGS="--ask-s 1800")
	$(SHIORI) llm setup
	$(PY) bench/bench_load.py --write docs/benchmarks.md $(ARGS)

bench-followup: models  ## what a follow-up question's rewrite costs, against its standalone question
	$(SHIORI) llm setup
	$(PY) bench/bench_followup.py --write docs/benchmarks.md

bench-answer: models  ## vLLM flags (prefix caching, n-gram speculative decoding) vs today's: answer p50, TTFT, decode
	$(SHIORI) llm setup
	$(PY) bench/bench_answer.py --write docs/benchmarks.md

bench-store: setup  ## the embedded store (Qdrant Edge) at 100k synthetic chunks, printed (ARGS="--size 1000000 --configs disk-sq-seg" for 1M)
	$(PY) bench/bench_scale.py $(or $(ARGS),--size 100000 --configs default$(comma)disk-sq-seg)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
