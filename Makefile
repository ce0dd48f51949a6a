# segkit: `make help` lists the targets. Every target installs on first use.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help

# The Python of the environment (tools/_common.sh decides; after install runs)
PY = $(shell env -u PYTHON bash -c 'source tools/_common.sh && echo "$$PYTHON"')
MODEL ?= segformer
GPUS ?= 1
PYTEST_ARGS ?=
TEST_JOBS ?= 2

.PHONY: help install install-dev demo test test-fast doctor tensorboard clean wheelhouse gpu-check

help: ## show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  variables: MODEL=segformer|mask2former (demo), SEGKIT_WHEELS=DIR (install; offline if made by make wheelhouse), TEST_JOBS=2, PYTEST_ARGS=..."

install: ## install the stack into the active env or .venv (idempotent)
	@bash scripts/install.sh

install-dev: ## install, plus the test tools
	@bash scripts/install.sh --dev

demo: install ## train, validate, test and report the built-in demo (MODEL=mask2former for the other)
	@$(PY) tools/demo.py --model $(MODEL)

test: install-dev ## run the test suite (CPU; real tiny runs; TEST_JOBS workers, a file each)
	@$(PY) -m pytest -n $(TEST_JOBS) --dist loadfile --durations=15 $(PYTEST_ARGS)

test-fast: install-dev ## the tests without the slow end-to-end ones
	@$(PY) -m pytest -n $(TEST_JOBS) --dist loadfile -m "not slow" $(PYTEST_ARGS)

wheelhouse: ## wheels + sdists for an offline make install (WHEELHOUSE=DIR PY_VERSION=3.12 PLATFORM=manylinux_2_28_x86_64 EXCLUDE="numpy opencv")
	@bash scripts/wheelhouse.sh

gpu-check: ## one-shot GPU check: install from WHEELS=DIR, doctor, gpu tests, demos, benchmarks (ARGS=--dry-run)
	@bash scripts/gpu_check.sh $(ARGS)

doctor: install ## check this machine's stack (GPU, nvcc, mmcv ops, ...)
	@$(PY) tools/doctor.py

tensorboard: install ## TensorBoard on work_dirs/: one run per experiment (PORT=6006)
	@bash scripts/tensorboard.sh work_dirs $(PORT)

clean: ## remove caches (keeps data/, checkpoints/, work_dirs/)
	@rm -rf .pytest_cache build *.egg-info
	@find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
