# Everything is idempotent: run any target on a fresh clone or again later.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEBS := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm dataset-fashion-mnist chromium
# The MLPerf Tiny models and peer figures: beside the checkout, else /work/shared.
SHARED ?= $(firstword $(wildcard $(abspath ../shared) /work/shared) $(abspath ../shared))
PYTEST_ARGS ?=

.PHONY: setup system-deps test lint demo bench clean

setup: system-deps $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	# Keras 2, whose LSTM converts to the fused UNIDIRECTIONAL_SEQUENCE_LSTM the tests need (Keras 3's
	# does not); without its dependency on the full `tensorflow`, which tensorflow-cpu already provides
	$(PY) -m pip install --quiet --no-deps tf_keras==2.21.0
	@touch $@

# Debian packages the tests and the demo need; installed when we are root,
# otherwise named so the user can install them.
system-deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	else \
	  echo "tinyq: missing Debian packages:$$missing -- install them with: sudo apt-get install -y$$missing"; \
	fi

test: setup lint
	TINYQ_SHARED=$(SHARED) $(PY) -m pytest $(PYTEST_ARGS)

# ruff: lint and the formatting check, over the package, tests and benches (config in pyproject.toml)
lint: setup
	$(VENV)/bin/ruff check tinyq tests bench
	$(VENV)/bin/ruff format --check tinyq tests bench

# The main job: MLPerf Tiny keyword spotting built for an emulated Cortex-M4,
# run in QEMU over the serial link and checked bit-exact.
demo: setup
	$(VENV)/bin/tinyq build $(SHARED)/models/mlperf_tiny/kws/kws_ref_model_int8.tflite --board mps2_an386 -o out/demo-kws
	$(VENV)/bin/tinyq bench out/demo-kws --emulate --profile

# Benchmarks that need only QEMU and the shared models (the others: python bench/<name>.py).
bench: setup
	TINYQ_SHARED=$(SHARED) $(PY) bench/memory.py
	TINYQ_SHARED=$(SHARED) $(PY) bench/emulated.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
