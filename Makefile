# swapline — `make demo` and `make test` set everything up on a fresh machine.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PROTOS := $(wildcard protos/swapline/v1/*.proto)
OUT    ?= out

.PHONY: setup demo test lint typecheck proto bench bench-detect gpu-check serve-detector serve-aligner clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip "setuptools<81" wheel
	$(PY) -m pip install -q -c constraints.txt -e ".[dev,train,triton]"
	touch $(STAMP)

## demo: swap the bundled d10 clip to identity d6 with the committed demo model (embedded)
demo: setup
	@mkdir -p $(OUT)
	$(VENV)/bin/swapline swap --model d6_to_d10 --input tests/data/d10.mp4 --output $(OUT)/demo-d10-as-d6.mp4
	@echo "output: $(OUT)/demo-d10-as-d6.mp4 (marked as synthetic media)"

## test: lint, type-check, then the whole test suite
test: setup lint typecheck
	$(PY) -m pytest -q -ra

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
	$(PY) -m swapline.benchmarks.detect tests/data/s18.mp4 --json $(OUT)/bench-detect.json

serve-detector: setup
	$(VENV)/bin/swapline serve detector

serve-aligner: setup
	$(VENV)/bin/swapline serve aligner

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .mypy_cache .ruff_cache

## gpu-check: train/export/serve the d6/d10 pair on an NVIDIA GPU and print speeds and quality
gpu-check: setup
	@mkdir -p $(OUT)
	$(PY) -m swapline.benchmarks.gpu_check --work $(OUT)/gpu-check --json $(OUT)/gpu-check.json

## bench: end-to-end frames/s (embedded, distributed, transcode floor), bytes moved, memory
bench: setup
	@mkdir -p $(OUT)
	$(PY) -m swapline.benchmarks.pipeline --json $(OUT)/bench.json
