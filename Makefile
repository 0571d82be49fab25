# Two commands from a fresh clone:  `make reproduce`  and  `make test`.
# Both create .venv idempotently; nothing here needs a GPU (`--device auto` picks CUDA when present).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
TORCH  ?= torch==2.13.0
PROFILE ?= quick
EXPERIMENT ?= defensegan-whitebox-mnist

.PHONY: venv data reproduce test test-slow test-smoke check-ray clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q --no-deps torchattacks==3.5.1
	$(PIP) install -q -e ".[test,ray]" "$(TORCH)"
	touch $(STAMP)

venv: $(STAMP)

data: $(STAMP)
	$(VENV)/bin/bench data fetch mnist
	$(VENV)/bin/bench data fetch fashion-mnist

reproduce: data
	$(VENV)/bin/bench reproduce $(EXPERIMENT) --profile $(PROFILE)

test: data
	$(PY) -m pytest -q

test-slow: data
	$(PY) -m pytest -q -m slow

# The smoke reproductions of the Defense-GAN tables and projection studies, the face tables, and SIGKILL-and-resume on Ray (slow tests; CI runs them).
test-smoke: data
	$(PY) -m pytest -q -m slow tests/test_defensegan_tables.py tests/test_faces_track.py tests/test_faults.py

# The Ray executor gives the local executor's results.csv, byte for byte (docs/ray.md; equal --threads).
check-ray: data
	rm -rf results/ci-ray && mkdir -p results/ci-ray
	$(VENV)/bin/bench -q reproduce $(EXPERIMENT) --profile smoke --out results/ci-ray/local --threads 1 >/dev/null
	$(VENV)/bin/bench -q reproduce $(EXPERIMENT) --profile smoke --out results/ci-ray/ray --executor ray --workers 2 >/dev/null
	cmp results/ci-ray/local/$(EXPERIMENT)/smoke/results.csv results/ci-ray/ray/$(EXPERIMENT)/smoke/results.csv
	@echo "check-ray: identical results.csv from the local and the Ray executor"

clean:
	rm -rf $(VENV) build *.egg-info results/ci-ray
