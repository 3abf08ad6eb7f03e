# vtlm: every target installs what it needs on a fresh clone.
#   make demo   the researcher workflow end to end on built-in data (CPU is enough)
#   make test   the test suite
#   make bench  vtlm beside its peers, same workloads, one run
#   make lint   ruff
#
# torch is installed first, on its own: the CPU build where no NVIDIA driver is present (a bare
# `torch` requirement resolved by pip would pull a multi-GB CUDA build). It is then held at the
# installed version by a pip constraint for every later install, extras included.

PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
# Extra pip arguments for the CPU torch install, e.g. an index that serves CPU wheels.
TORCH_CPU_ARGS ?=
DEMO_OUT ?= runs/demo

PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONSTRAINTS := $(VENV)/torch-constraint.txt
INSTALLED := $(VENV)/.installed

.PHONY: install test test-fast demo bench lint clean

$(CONSTRAINTS):
	$(PYTHON) -m venv $(VENV)
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
		echo "CUDA driver found: installing torch==$(TORCH_VERSION) (CUDA build)"; \
		$(PIP) install "torch==$(TORCH_VERSION)"; \
	else \
		echo "no CUDA driver: installing torch==$(TORCH_VERSION) (CPU build)"; \
		$(PIP) install "torch==$(TORCH_VERSION)" $(TORCH_CPU_ARGS); \
	fi
	$(PY) -c "import torch; print('torch==' + torch.__version__)" > $@
	@echo "holding $$(cat $@) for every later install"

$(INSTALLED): $(CONSTRAINTS) pyproject.toml
	$(PIP) install -c $(CONSTRAINTS) -e ".[dev]"
	$(PY) -c "import torch, sys; want = open('$(CONSTRAINTS)').read().strip().split('==')[1]; \
		sys.exit(0 if torch.__version__ == want else 'torch changed to ' + torch.__version__ + ', expected ' + want)"
	@touch $@

install: $(INSTALLED)

# Test workers (pytest-xdist): one per core of the 2-core machines the suite is sized for.
TEST_WORKERS ?= 2

test: $(INSTALLED)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup

test-fast: $(INSTALLED)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not slow"

demo: $(INSTALLED)
	$(VENV)/bin/vtlm demo --out $(DEMO_OUT)

# The peers live in their own venv: PyPI's torchvision (pulled by magvit2-pytorch) does not load
# beside the CPU build of torch and then breaks lightning's imports, so it must never reach .venv.
BENCH_VENV ?= .venv-bench

$(BENCH_VENV)/.bench-installed: pyproject.toml
	$(MAKE) install VENV=$(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -c $(BENCH_VENV)/torch-constraint.txt -e ".[dev,bench]" \
		|| echo "some bench peers could not be installed; the bench reports them"
	@$(BENCH_VENV)/bin/python -c "import torchvision" 2>/dev/null \
		|| { echo "torchvision does not load beside this torch: removing it from $(BENCH_VENV)"; \
		     $(BENCH_VENV)/bin/python -m pip uninstall -y torchvision; }
	@touch $@

bench: $(BENCH_VENV)/.bench-installed
	$(BENCH_VENV)/bin/vtlm bench --out runs/bench

lint: $(INSTALLED)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) $(BENCH_VENV) runs .pytest_cache .ruff_cache
