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

STAGES := data/models/.fac-tiny-stages
train-tiny: setup  ## retrain the embedded default fac-tiny (4 stages, about 90 min on 2 cores) and write its card
	$(PY) -m fac_lens.train_tiny --out $(STAGES)/1 --steps 4000 --lr 2e-3 --no-card
	$(PY) -m fac_lens.train_tiny --init-from $(STAGES)/1 --first-sample 128000 --steps 4000 --lr 1.5e-3 \
		--out $(STAGES)/2 --no-card
	$(PY) -m fac_lens.train_tiny --init-from $(STAGES)/2 --first-sample 256000 --steps 4000 --lr 1e-3 \
		--out $(STAGES)/3 --no-card
	$(PY) -m fac_lens.train_tiny --init-from $(STAGES)/3 --first-sample 384000 --steps 3000 --lr 7e-4 \
		--out data/models/fac-tiny --no-card
	for i in 1 2 3; do cp $(STAGES)/$$i/training_log.csv data/models/fac-tiny/training_log_stage$$i.csv; \
		cp $(STAGES)/$$i/training_args.json data/models/fac-tiny/training_args_stage$$i.json; done
	rm -rf $(STAGES)
	$(PY) -m fac_lens.tiny_card data/models/fac-tiny --command "make train-tiny"

card-tiny: setup  ## re-evaluate fac-tiny on the test split and rewrite its model card
	$(PY) -m fac_lens.tiny_card data/models/fac-tiny

bench: setup
	$(PY) -m bench.run_all

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
