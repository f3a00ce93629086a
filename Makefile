# Two commands matter: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DEMO_ROOT ?= demo-out/MedIMeta

.PHONY: setup demo test lint typecheck unit bench clean

setup: $(STAMP)

# torch is pinned to the local CPU wheel first: any looser spec would pull CUDA packages.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	# medimeta 0.0.6's own loader reads our writer's output in a compatibility test; it needs
	# torchvision, which does not import with this torch, so only its source is fetched.
	$(PIP) download -q --no-deps medimeta==0.0.6 -d $(VENV)/medimeta-0.0.6
	touch $(STAMP)

demo: setup
	$(PY) -m medimeta.demo --root $(DEMO_ROOT)

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks tools
	$(VENV)/bin/ruff format --check src tests benchmarks tools

typecheck: setup
	$(VENV)/bin/mypy

unit: setup
	$(VENV)/bin/pytest -q

test: lint typecheck unit

bench: setup
	$(PY) benchmarks/loader.py

clean:
	rm -rf demo-out .pytest_cache .mypy_cache .ruff_cache
