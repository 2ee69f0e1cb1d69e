# Why TCP Waits — the two commands a reader needs are `make book` and `make test`.
SHELL := /bin/bash
# Debian's own Python when present: world-readable, so the unprivileged notebook check can
# run the same environment.
PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000
BOOK_FLAGS := --all -W -n --keep-going
NB_TIMEOUT ?= 120

.PHONY: setup lock book build-book serve test test-lib test-notebooks test-notebooks-user test-book \
        test-labs test-labs-repeat test-site test-binder lab recordings bench clean format

$(STAMP): requirements.lock requirements.txt binder/requirements.txt pyproject.toml
	@PYTHON=$(PYTHON) bash scripts/system-deps.sh
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.10+ is needed ($(PYTHON) not found)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: on Debian, apt-get install python3-venv"; exit 1; }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) scripts/check_lock.py
	@touch $(STAMP)

## setup: virtual environment with the exact versions of requirements.lock, the course library
## (editable), and the Debian packages the experiments use
setup: $(STAMP)
	@PYTHON=$(PYTHON) bash scripts/system-deps.sh

## lock: requirements.lock from requirements.txt, and Binder's binder/requirements.txt from
## binder/requirements.in at the same versions. Pins that still fit stay as they are;
## `make lock LOCK_FLAGS=--upgrade` moves every pin to the newest release allowed.
LOCK_PYTHON := 3.11
UV := $(VENV)/bin/uv
lock:
	@test -x $(UV) || { test -x $(PY) || $(PYTHON) -m venv $(VENV); $(PY) -m pip install -q uv; }
	$(UV) pip compile -q requirements.txt -o requirements.lock --python-version $(LOCK_PYTHON) \
		--no-emit-package timewait --custom-compile-command "make lock" $(LOCK_FLAGS)
	$(UV) pip compile -q binder/requirements.in -c requirements.lock -o binder/requirements.txt \
		--python-version $(LOCK_PYTHON) --custom-compile-command "make lock" $(LOCK_FLAGS)

## book: build the site into _build/html and serve it on http://127.0.0.1:$(PORT)
book: setup build-book serve

## build-book: the site into _build/html. First the JavaScript the pages serve themselves and the
## captures of the recorded runs (book/_static), then the book, then JupyterLite into _build/html/lite.
build-book:
	$(PY) scripts/site_assets.py
	$(VENV)/bin/jupyter-book build . $(BOOK_FLAGS)
	$(PY) scripts/build_lite.py --output _build/html/lite

serve:
	@echo "Serving the course at http://127.0.0.1:$(PORT)/  (Ctrl-C to stop)"
	@$(PY) -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

## test: every check, in three lanes side by side (test-lib then test-binder; test-book then
## test-site; test-labs then test-labs-repeat with TEST_RUNS runs): most of test-lib is waiting on
## the kernel's timers, so the lanes share the cores well; the notebooks' live runs (test-binder)
## come after test-lib, when the machine is quieter. Prints each stage's start, wall time and
## CPU time, and the total.
TEST_RUNS ?= 3
test: setup
	@$(PY) scripts/run_checks.py test-lib+test-binder test-book+test-site \
		"test-labs+test-labs-repeat RUNS=$(TEST_RUNS)"

## test-lib: lint, format, types, claims, and the library's tests, LIB_WORKERS at once (they
## mostly wait on the kernel's timers), with the slow ones (TIMEWAIT_SLOW=1: an orphan's whole
## ~105 s life)
LIB_WORKERS ?= 4
test-lib: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) book/_ext/course_claims.py
	TIMEWAIT_SLOW=1 $(PY) -m pytest tests -q -n $(LIB_WORKERS) --dist worksteal

## format: rewrite the Python files as `ruff format` wants them (make test-lib checks it)
format: setup
	$(VENV)/bin/ruff format .

## test-notebooks: nbval over every notebook and lab master notebook in .venv (quick while
## writing a notebook; make test runs the same check as an unprivileged Binder reader, in
## test-binder)
test-notebooks: setup
	$(PY) -m pytest --nbval notebooks labs -q -n 2 --dist loadscope --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=$(NB_TIMEOUT) -p no:cacheprovider

## test-notebooks-user: the same nbval run as an unprivileged user (only when run as root)
test-notebooks-user: setup
	@./scripts/nbval-as-user.sh

test-book: setup
	rm -rf _build
	@$(MAKE) --no-print-directory build-book
	$(PY) -m pytest tests/site -q

## test-labs: every lab built and graded (reference at full marks, student version below), and one
## lab's student bundle installed in a fresh directory as its README says
test-labs: setup
	$(PY) labs/check_labs.py --check-bundle

## test-labs-repeat: every check of every lab RUNS times against the reference solutions (never
## below full marks) and against the wrong answers in labs/*/wrong/ (never full marks)
RUNS ?= 20
test-labs-repeat: setup
	$(PY) labs/repeat_checks.py --runs $(RUNS)

## test-binder: a fresh environment from binder/ alone; as an unprivileged user, nbval over
## every notebook and lab master notebook with user namespaces available (full tier), and every
## notebook and lab reference solution run with them switched off (host tier), one after the other
test-binder:
	@$(PYTHON) scripts/binder-rehearsal.py

## test-site: every built page opened in headless Chromium (builds the site first if missing);
## screenshots and the page-weight report go to _build/site-test/
test-site: setup
	@test -f _build/html/index.html || $(MAKE) --no-print-directory build-book
	TIMEWAIT_SITE_BROWSER=1 $(PY) -m pytest tests/site/test_browser.py tests/site/test_live_panels.py \
		tests/site/test_wide_outputs.py tests/site/test_figures.py -q -p no:cacheprovider -rs

## lab: open the notebooks in JupyterLab
lab: setup
	$(PY) -m pip install -q jupyterlab
	$(VENV)/bin/jupyter lab notebooks/

## recordings: re-run every experiment live and store its outcome (full tier only)
recordings: setup
	$(VENV)/bin/timewait record

bench: setup
	$(PY) benchmarks/bench_experiments.py
	$(PY) benchmarks/bench_model.py

clean:
	rm -rf _build
