# The developer surface. Everything real lives in scripts/ and setup.py.
PY ?= .venv/3.12/bin/python

.PHONY: build debug sanitize valgrind test test-pure test-all bench bench-smoke docs lint demo clean

build:            ## the extension, in place
	GMR_REQUIRE_EXTENSION=1 $(PY) setup.py -q build_ext --inplace --force

debug:            ## -O0 -g3 -UNDEBUG, Cython line tracing
	GMR_DEBUG_BUILD=1 GMR_REQUIRE_EXTENSION=1 $(PY) setup.py -q build_ext --inplace --force

sanitize:         ## AddressSanitizer build (run with LD_PRELOAD=$$(gcc -print-file-name=libasan.so))
	GMR_SANITIZE=address GMR_REQUIRE_EXTENSION=1 $(PY) setup.py -q build_ext --inplace --force

# CPython's own noise (immortal strings at exit) is suppressed; the script
# fails when a definite loss has a gmr frame. Minutes: not part of the tests.
VALGRIND = PYTHONMALLOC=malloc valgrind --tool=memcheck --leak-check=full \
	--show-leak-kinds=definite --errors-for-leak-kinds=definite --num-callers=40 \
	--suppressions=scripts/valgrind-python.supp

valgrind: build   ## memcheck: 500 captures (core_leak.py), then 100 whole reports under churn (soak_service.py)
	$(VALGRIND) --log-file=valgrind-core_leak.log $(PY) tests/programs/core_leak.py 500
	$(PY) scripts/valgrind_gmr_leaks.py valgrind-core_leak.log
	logs=$$(mktemp -d) && $(VALGRIND) --log-file=valgrind-soak.log \
		$(PY) tests/programs/soak_service.py $$logs 100; rm -rf $$logs
	$(PY) scripts/valgrind_gmr_leaks.py valgrind-soak.log

test: build       ## one Python, both twins
	$(PY) -m pytest -q

test-pure:        ## one Python, the pure twin only
	GMR_NO_EXTENSIONS=1 $(PY) -m pytest -q -m "not compiled_only"

test-all:         ## every supported Python, as CI runs it
	scripts/test

bench: build      ## the benchmark suite, timed
	$(PY) -m pytest benchmarks

bench-smoke:      ## every benchmark once, untimed
	$(PY) -m pytest -q benchmarks --benchmark-disable -m "not slow"

docs:             ## the documentation, warnings as errors, in .venv/docs/html
	$(PY) -m sphinx -W --keep-going -n -E -q -b html docs .venv/docs/html

lint:
	$(PY) -m ruff check gmr tests benchmarks examples scripts docs
	$(PY) -m mypy

demo:
	scripts/demo

clean:
	rm -rf build gmr/_walker.c gmr/_trigger.c gmr/_files.c gmr/*.so gmr/*.html *.egg-info valgrind-*.log
