# polarity: `make serve` / `make analyze` and `make test` set everything up on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
EXTRAS ?= serve,evaluate,onnx,ray,qwen,dev
TEXT   ?= I love it

.PHONY: setup test test-all lint serve analyze prepare-default train-default clean

setup: $(STAMP)

# torch first, pinned. On PyPI, Linux torch is the CUDA build (several GB): without an NVIDIA
# GPU (no nvidia-smi) PyTorch's CPU index is added as an extra index when it answers, beside
# pip's own configured index, and its 2.13.0+cpu wins for the pinned version.
# Override: make setup TORCH_INDEX=            (pip's own indexes only, e.g. a local wheel)
#           make setup TORCH_INDEX=https://download.pytorch.org/whl/cu128
TORCH_INDEX ?= $(shell command -v nvidia-smi >/dev/null 2>&1 || { curl -s -m 3 -o /dev/null \
	-w '%{http_code}' https://download.pytorch.org/whl/cpu/torch/ 2>/dev/null | grep -q 200 \
	&& echo https://download.pytorch.org/whl/cpu; })

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

test: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m ""

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks || true

# Serves the shipped default model on 127.0.0.1:8000 with a local API key (made on first run).
serve: setup
	@mkdir -p .polarity
	@test -s .polarity/api_key || (umask 077 && $(VENV)/bin/polarity keys create --file .polarity/api_keys.txt --name local > .polarity/api_key)
	@chmod 600 .polarity/api_key
	@echo "API key: $$(cat .polarity/api_key)"
	@echo "Try: curl -s 127.0.0.1:8000/api/v1/analyze -H \"X-API-Key: $$(cat .polarity/api_key)\" -H 'Content-Type: application/json' -d '{\"text\": \"I love it\"}'"
	HF_HUB_OFFLINE=1 API_KEYS_FILE=.polarity/api_keys.txt $(VENV)/bin/polarity serve

analyze: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/polarity analyze "$(TEXT)"

prepare-default: setup
	$(VENV)/bin/polarity prepare --config configs/prepare_default.yaml

train-default: prepare-default
	$(VENV)/bin/polarity train --config configs/encoder_default.yaml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build src/*.egg-info
