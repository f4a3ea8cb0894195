# kd_det: every target runs through the pinned environment in .venv (built by `make env`).
PY := .venv/bin/python
DATA ?= data/synthetic
QUICK ?= 0
SEEDS ?= 0 1 2
JOBS ?= 2
PYTEST_ARGS ?=

.PHONY: env data demo test bench bench-distill clean-env

env: .venv/.kd_det_complete

.venv/.kd_det_complete: $(wildcard requirements/*.txt) setup.py
	bash tools/setup_env.sh

data: env
	$(PY) -m kd_det.datasets.synthetic --out $(DATA)

demo: env
	$(PY) tools/demo.py --data-root $(DATA) $(if $(filter 1,$(QUICK)),--quick,)

test: env
	$(PY) -m pytest tests $(PYTEST_ARGS)

bench: env
	$(PY) tools/benchmark.py configs/benchmark/embedded.py --seeds $(SEEDS) --jobs $(JOBS)

# the distillers' headline comparison: 5 seeds, paired by seed with mmrazor's CWD, measured
bench-distill: env
	$(PY) tools/benchmark.py configs/benchmark/distillers_v2_headline.py --jobs $(JOBS)

clean-env:
	rm -f .venv
