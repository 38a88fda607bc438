# polarity: `make serve` / `make analyze` and `make test` set everything up on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Serving needs the service and ONNX Runtime only; tests, training, evaluation, Ray and the
# Qwen2 tier need the full set.
SERVE_EXTRAS ?= serve,onnx
EXTRAS       ?= serve,evaluate,onnx,ray,qwen,dev
SERVE_STAMP  := $(VENV)/.installed-serve
STAMP        := $(VENV)/.installed
TEXT   ?= I love it

.PHONY: setup setup-serve test test-all lint serve analyze prepare-default train-default clean \
	base-image image test-image

setup: $(STAMP)
setup-serve: $(SERVE_STAMP)

# torch first, pinned. On PyPI, Linux torch is the CUDA build (several GB): without an NVIDIA
# GPU (no nvidia-smi) PyTorch's CPU index is added as an extra index when it answers, beside
# pip's own configured index, and its 2.13.0+cpu wins for the pinned version; when it does not
# answer, the recipe says so and pip's own index supplies torch.
# Override: make setup TORCH_INDEX=            (pip's own indexes only, e.g. a local wheel)
#           make setup TORCH_INDEX=https://download.pytorch.org/whl/cu128
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
define install_torch
	@index='$(TORCH_INDEX)'; \
	if [ '$(origin TORCH_INDEX)' = undefined ] && ! command -v nvidia-smi >/dev/null 2>&1; then \
	  if curl -s -m 3 -o /dev/null -w '%{http_code}' $(TORCH_CPU_INDEX)/torch/ 2>/dev/null \
	      | grep -q 200; then index=$(TORCH_CPU_INDEX); \
	  else echo "make: PyTorch's CPU index ($(TORCH_CPU_INDEX)) did not answer in 3 s: torch" \
	    "comes from pip's own index instead (on Linux the CUDA build, several GB; choose with" \
	    "TORCH_INDEX=URL)" >&2; fi; \
	fi; \
	echo "installing torch==2.13.0$${index:+ (extra index $$index)}"; \
	$(PY) -m pip install -q torch==2.13.0 $${index:+--extra-index-url $$index}
endef

$(SERVE_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(install_torch)
	$(PY) -m pip install -q -e ".[$(SERVE_EXTRAS)]"
	touch $(SERVE_STAMP)

$(STAMP): $(SERVE_STAMP)
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
# KEYS_FILE is `polarity keys`'s default too, so `polarity keys list` shows this key.
KEYS_FILE := .polarity/api_keys.txt
serve: setup-serve
	@mkdir -p .polarity
	@test -s .polarity/api_key || (umask 077 \
	  && { $(VENV)/bin/polarity keys revoke local --file $(KEYS_FILE) >/dev/null 2>&1 || true; } \
	  && $(VENV)/bin/polarity keys create --file $(KEYS_FILE) --name local > .polarity/api_key)
	@chmod 600 .polarity/api_key
	@echo "API key: $$(cat .polarity/api_key)"
	@echo "Try: curl -s 127.0.0.1:8000/api/v1/analyze -H \"X-API-Key: $$(cat .polarity/api_key)\" -H 'Content-Type: application/json' -d '{\"text\": \"I love it\"}'"
	API_KEYS_FILE=$(KEYS_FILE) $(VENV)/bin/polarity serve

# The shipped default model is packaged: serve and analyze ask no hub, so neither turns it off.
analyze: setup-serve
	$(VENV)/bin/polarity analyze "$(TEXT)"

prepare-default: setup
	$(VENV)/bin/polarity prepare --config configs/prepare_default.yaml

train-default: prepare-default
	$(VENV)/bin/polarity train --config configs/encoder_default.yaml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build src/*.egg-info

# The CPU image (docs/deploy.md). BASE: python:3.11-slim when a registry answers, else a base
# built here from Debian packages (mmdebstrap) with the same role. pip's index settings and CA
# bundle reach the build stage only (scripts/docker_context.py); DOCKER_BUILDKIT=0 because
# buildx is not packaged everywhere, and nothing here needs it.
IMAGE      ?= polarity:cpu
LOCAL_BASE := local/python:3.11-bookworm
BASE       ?= $(shell docker image inspect python:3.11-slim >/dev/null 2>&1 && echo python:3.11-slim \
	|| (timeout 20 docker pull -q python:3.11-slim >/dev/null 2>&1 && echo python:3.11-slim) \
	|| echo $(LOCAL_BASE))

base-image:
	@docker image inspect $(LOCAL_BASE) >/dev/null 2>&1 || { \
	  mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates,passwd \
	    bookworm .docker-base.tar && docker import .docker-base.tar $(LOCAL_BASE) \
	    && rm -f .docker-base.tar; }

image: setup $(if $(filter $(LOCAL_BASE),$(BASE)),base-image)
	$(PY) scripts/docker_context.py .docker-build
	DOCKER_BUILDKIT=0 docker build --build-arg BASE=$(BASE) -t $(IMAGE) .
	@docker image inspect $(IMAGE) --format 'image $(IMAGE): {{.Size}} bytes'

test-image: setup
	POLARITY_IMAGE=$(IMAGE) $(PY) -m pytest -q -m docker tests/test_image.py

