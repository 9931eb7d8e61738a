# `make repro` and `make test` work on a fresh machine with only Python 3.11 and the package registry.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# DVC stage commands call `python`: make it the project's.
export PATH := $(abspath $(BIN)):$(PATH)
export VIRTUAL_ENV := $(abspath $(VENV))
# Runs never reach the Hugging Face hub (params.yaml hub.allow_network lifts this for data ingest).
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: repro test test-fast install clean-venv paper-profile paper-sim cache-push cache-pull tune

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Stamp files: reinstall only when the project's dependency list changes.
$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install --quiet -c requirements.lock -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

repro: $(VENV)/.installed
	$(BIN)/dvc repro

# Switch params.yaml to the paper's configuration (params/paper.yaml); `git diff params.yaml` shows it,
# `git checkout params.yaml` undoes it. Preview with `$(BIN)/mmm profile apply params/paper.yaml --dry-run`.
paper-profile: $(VENV)/.installed
	$(BIN)/mmm profile apply params/paper.yaml

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

# Skip the slow end-to-end tests (CI runs everything through `make test`).
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m 'not slow'

clean-venv:
	rm -rf $(VENV)

# The simulated paper run at full size (benchmarks/paper_sim: synthetic inputs at Table 2's sizes, a local
# OpenAI-compatible server, the real pipeline on a copy, Tables 2-4 checked cell by cell). ~20-30 min.
# Extra arguments: make paper-sim SIM_ARGS="--fault-rate 0.05 --kills 2"
paper-sim: $(VENV)/.installed-test
	$(BIN)/python benchmarks/paper_sim $(SIM_ARGS)

# The LLM answers an API run paid for (llm.cache_dir of the paper profile) are versioned by DVC, not git:
# cache-push records the folder's shards in $(LLM_API_CACHE).dvc and uploads them to the DVC remote (run it
# once the LLM stages have finished: DVC does not take the cache's lock); commit the .dvc file it changed.
# cache-pull fetches the answers that .dvc file records; DVC refuses to overwrite answers not yet pushed.
# No .dvc file is committed before the first paid run: `dvc repro` fails on a tracked folder that no one can pull.
LLM_API_CACHE ?= data/cache/llm-api

cache-push: $(VENV)/.installed
	mkdir -p $(LLM_API_CACHE)
	$(BIN)/dvc add $(LLM_API_CACHE)
	$(BIN)/dvc push $(LLM_API_CACHE).dvc
	@echo "Now version it: git add $(LLM_API_CACHE).dvc && git commit -m 'LLM API answers'"

cache-pull: $(VENV)/.installed
	@if [ ! -f $(LLM_API_CACHE).dvc ]; then \
		echo "no $(LLM_API_CACHE).dvc yet (make cache-push writes it after a paid run): nothing to pull"; \
	else $(BIN)/dvc pull $(LLM_API_CACHE).dvc; fi

# Choosing the training settings on the dev split (never the test set): one queued `dvc exp run` per
# (learning rate, LoRA rank, steps), each training on split.fit and scoring split.dev with the schema
# constraint; TUNE_JOBS run at once (one torch thread each). Compare with
#   dvc exp show --only-changed --drop '.*(audits|\.ci\.|precision|recall|\.n$$)'
TUNE_LR ?= 2e-4 5e-4 1e-3
TUNE_RANK ?= 8 16 32
TUNE_STEPS ?= 40
TUNE_JOBS ?= 2
SPLIT_PATH = $$($(BIN)/python -c 'import sys, yaml; print(yaml.safe_load(open("params.yaml"))["split"][sys.argv[1]])' $(1))
TUNE_FLAGS = -S train.train_file=$(call SPLIT_PATH,fit) -S predict.test=$(call SPLIT_PATH,dev) \
	-S predict.max_rows_per_cell=null -S predict.constrained=schema

tune: $(VENV)/.installed
	@for lr in $(TUNE_LR); do for r in $(TUNE_RANK); do for steps in $(TUNE_STEPS); do \
		$(BIN)/dvc exp run --queue -n "tune-lr$$lr-r$$r-s$$steps" $(TUNE_FLAGS) -S train.learning_rate=$$lr \
			-S train.lora.r=$$r -S train.lora.alpha=$$((2 * r)) -S train.max_steps=$$steps || exit 1; \
	done; done; done
	$(BIN)/dvc queue start -j $(TUNE_JOBS)
	@echo "follow with: $(BIN)/dvc queue status; then $(BIN)/dvc exp show"
