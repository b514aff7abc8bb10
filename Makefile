# Every target bootstraps .venv on first use from pyproject.toml, so a fresh clone needs only
# `make demo` or `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint bench release mutation nbgrader system-packages clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# bubblewrap sandboxes the autograder; haproxy is the benchmark's baseline. Both are Debian
# packages: installed when we are root and they are missing, otherwise the code falls back.
system-packages:
	@bash .ci/system-packages bubblewrap libcap2-bin iproute2

demo: $(STAMP) system-packages
	$(VENV)/bin/minilb demo

test: $(STAMP) system-packages lint
	$(PY) -m pytest -n 2 tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP) system-packages
	@bash .ci/system-packages haproxy
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

# The lessons take their exercise code from the reference package, then the handout is built.
release: $(STAMP)
	$(PY) lessons/sync_from_reference.py
	$(VENV)/bin/minilb release

# nbgrader from its course root, lessons/, with the venv first on PATH (nbgrader runs alembic
# from there, and its kernels must import the kit):  make nbgrader ARGS="autograde 01_cost_matrix"
nbgrader: $(STAMP) system-packages
	cd lessons && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" nbgrader $(ARGS)

mutation: $(STAMP) system-packages
	$(PY) -m autograder.mutation

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
