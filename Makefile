# hrbench — every entry point a user needs. `make demo` sets up and runs the main job;
# `make test` runs the test suite (what CI runs through .ci/run).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
HRBENCH = $(VENV)/bin/hrbench
DEMO    = runs/demo
# pytest-xdist processes for `make test`; each test file runs whole in one of them (its module fixtures once)
TEST_WORKERS ?= 2

.PHONY: setup demo test tables bench lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev,onnx]'
	touch $@

demo: setup
	$(HRBENCH) flops dite18 --input 256x192
	$(HRBENCH) flops --all
	rm -rf $(DEMO)
	$(HRBENCH) data synth --dataset coco --out $(DEMO)/data --train 300 --val 40 --seed 0
	$(HRBENCH) train lite18 --data $(DEMO)/data --input 128x96 --epochs 8 --batch 16 --lr 2e-3 \
		--workers 1 --out $(DEMO) --name lite18 --validate-first
	$(HRBENCH) eval lite18 --checkpoint $(DEMO)/lite18/checkpoints/best.pt --data $(DEMO)/data --input 128x96

test: setup
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

tables: setup
	$(HRBENCH) tables --out reports

bench: setup
	$(HRBENCH) tables --bench --out reports

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
