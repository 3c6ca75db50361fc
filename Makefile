# fac_lens: set-up, demo, tests, benchmarks. Everything installs into .venv from the package
# registries; torch comes from the CPU wheel (torch==2.13.0) so no CUDA packages are pulled.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup demo test test-slow lint bench train-tiny card-tiny clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev]"
	touch $@

demo: setup
	$(PY) -m fac_lens.demo

test: setup
	$(PY) -m pytest -q
	$(VENV)/bin/ruff check fac_lens tests bench

test-slow: setup
	$(PY) -m pytest -q -m slow

train-tiny: setup  ## retrain the embedded default fac-tiny (about 25 min on 2 cores) and write its card
	$(PY) -m fac_lens.train_tiny --out data/models/fac-tiny

card-tiny: setup  ## re-evaluate fac-tiny on the test split and rewrite its model card
	$(PY) -m fac_lens.tiny_card data/models/fac-tiny

bench: setup
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
