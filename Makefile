# swapline — `make demo` and `make test` set everything up on a fresh machine.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PROTOS := $(wildcard protos/swapline/v1/*.proto)
OUT    ?= out
# Helm's library (helm-sdkpy) needs Python 3.12: a small venv of its own.
HELM_VENV ?= .venv-helm
PY312  ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12))
HELM_STAMP := $(HELM_VENV)/.installed-stamp


.PHONY: images images-test
.PHONY: setup system-deps helm-env postgres demo test lint typecheck proto bench bench-detect gpu-check \
	serve-detector serve-aligner up down chart-check eval gpu-bench clean

setup: $(STAMP) system-deps

## system-deps: from Debian: Prometheus and promtool (the local stack and the rule tests),
## buildah and debootstrap (the images and their tests)
system-deps:
	@command -v promtool >/dev/null 2>&1 && command -v buildah >/dev/null 2>&1 && \
		command -v debootstrap >/dev/null 2>&1 || { \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			prometheus buildah debootstrap >/dev/null; }

helm-env: $(HELM_STAMP)

$(HELM_STAMP): constraints-helm.txt
	@test -n "$(PY312)" || { echo "Python 3.12 is needed for Helm's library (pyenv install 3.12)"; exit 1; }
	$(PY312) -m venv $(HELM_VENV)
	$(HELM_VENV)/bin/python -m pip install -q -c constraints-helm.txt helm-sdkpy helm-python-sdk jsonschema pyyaml
	touch $(HELM_STAMP)

## chart-check: Helm lint of charts/swapline, its values against values.schema.json
chart-check: helm-env
	$(HELM_VENV)/bin/python deploy/tools/chart_check.py charts/swapline

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools<81" wheel
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,train,triton]"
	touch $(STAMP)

## images: the runtime image and the CPU Triton image (buildah, from a debootstrap base)
images:
	@command -v buildah >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1 || { \
		echo "make images needs buildah and debootstrap: apt-get install buildah debootstrap"; \
		exit 1; }
	@$(MAKE) --no-print-directory setup
	$(PY) -m swapline.devtools.images build

## images-test: every service from its image, one distributed swap job through them
images-test: setup
	$(PY) -m pytest -q -ra tests/images

## demo: swap the bundled d10 clip to identity d6 with the committed demo model (embedded)
demo: setup
	@mkdir -p $(OUT)
	$(VENV)/bin/swapline swap --model d6_to_d10 --input tests/data/d10.mp4 --output $(OUT)/demo-d10-as-d6.mp4
	@echo "output: $(OUT)/demo-d10-as-d6.mp4 (marked as synthetic media)"

## test: lint, type-check, then the whole test suite
test: setup helm-env postgres lint typecheck
	$(PY) -m pytest -q -ra

# A local PostgreSQL (Debian's package) for the job store's server-database
# mode: tests run the orchestrator on it as well as on SQLite.
PG_URL ?= postgresql://swapline:swapline@127.0.0.1:5432/swapline_test
PSQL = su postgres -c
## postgres: install and start Debian's PostgreSQL with a swapline role and test database
postgres:
	@command -v pg_ctlcluster >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }
	@pg_lsclusters -h | grep -q online || pg_ctlcluster $$(pg_lsclusters -h | awk 'NR==1 {print $$1, $$2}') start
	@$(PSQL) "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname = 'swapline'\"" | grep -q 1 || \
		$(PSQL) "psql -qc \"CREATE ROLE swapline LOGIN PASSWORD 'swapline' CREATEDB\""
	@$(PSQL) "psql -tAc \"SELECT 1 FROM pg_database WHERE datname = 'swapline_test'\"" | grep -q 1 || \
		$(PSQL) "createdb -O swapline swapline_test"

lint: setup
	$(VENV)/bin/ruff check services tests
	$(VENV)/bin/ruff format --check services tests

typecheck: setup
	$(VENV)/bin/mypy

## proto: regenerate the committed Python code from protos/
proto: setup
	$(PY) -m grpc_tools.protoc -Iprotos --python_out=services --pyi_out=services \
		--grpc_python_out=services $(PROTOS)

## bench-detect: detection + alignment frames/s on a 720p clip vs decoding alone
bench-detect: setup
	@mkdir -p $(OUT)
	$(PY) -m swapline.devtools.benchmarks.detect tests/data/s18.mp4 --json $(OUT)/bench-detect.json

serve-detector: setup
	$(VENV)/bin/swapline serve detector

serve-aligner: setup
	$(VENV)/bin/swapline serve aligner

## up: the local stack, every service its own process, Triton and Prometheus (:9090)
up: setup
	$(VENV)/bin/swapline stack up --dir .stack

## down: stop the local stack
down: setup
	$(VENV)/bin/swapline stack down --dir .stack

clean:
	rm -rf $(VENV) $(HELM_VENV) $(OUT) .stack .pytest_cache .mypy_cache .ruff_cache

## gpu-check: train/export/serve the d6/d10 pair on an NVIDIA GPU and print speeds and quality
gpu-check: setup
	@mkdir -p $(OUT)
	$(PY) -m swapline.devtools.benchmarks.gpu_check --work $(OUT)/gpu-check --json $(OUT)/gpu-check.json

## gpu-bench: on an NVIDIA GPU: Triton faces/s at batch 1-256 fp32/fp16 vs PyTorch, 1080p pipeline
gpu-bench: setup
	@mkdir -p $(OUT)
	$(PY) -m swapline.devtools.benchmarks.gpu_bench --json $(OUT)/gpu-bench.json

## bench: the benchmark suite (throughput, stage costs, bytes, memory, length/resolution/faces)
bench: setup
	@mkdir -p $(OUT)
	$(VENV)/bin/swapline bench --json $(OUT)/bench.json
	$(VENV)/bin/swapline capacity --bench $(OUT)/bench.json --out docs/capacity.md

## eval: quality of the demo model on d10's frames it never trained on (report in out/eval)
eval: setup
	$(VENV)/bin/swapline eval --input tests/data/d10.mp4 --source tests/data/d6.mp4 \
		--model d6_to_d10 --frames 360:448 --out $(OUT)/eval
