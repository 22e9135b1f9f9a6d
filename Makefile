# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both build one root .venv holding both projects (twostream/ and twitchgraph/), installed
# editable with the exact versions of constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV)/bin)
# uv installs the same pinned set pip would (pip takes the same constraints), faster: torch
# and the CUDA libraries are most of it. --compile-bytecode as pip does: where
# PYTHONDONTWRITEBYTECODE is set (as on our CI), nothing would ever write the .pyc files, and
# every process would compile torch again (imports 2.5x slower).
PIP := $(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -c constraints.txt
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# pytest-xdist (the tests depend on no order, port or core count). --dist loadfile hands each
# test file to one worker whole, so a file's expensive module fixture (trained runs, the GPU
# check's bundle, the examples' demo store) is made once. (--dist loadgroup would group by
# xdist_group marks, but xdist 3.8 cannot rename pytest 9's node ids, so it groups nothing.)
PYTEST := $(BIN)/python -m pytest --dist loadfile
# twostream's tests keep the cores busy: one worker per core. twitchgraph's spend about half
# their time waiting (sockets, subprocesses, the simulator's clock): two workers per core.
# twostream starts its files with slow tests first (its conftest orders them; xdist would
# otherwise start the files with most tests first), so the long ones do not run alone at the
# end. twitchgraph keeps xdist's order: its slow tests are timing-sensitive, and starting
# them all at once loads the machine more than they allow for.
TS_WORKERS := -n auto --no-loadscope-reorder
TG_WORKERS = -n $(shell $(PYTHON) -c 'import os; print(2 * (os.cpu_count() or 1))')
# Beside twostream's quick tests, which keep the cores busy, one twitchgraph worker per core:
# more only add their start-up (90 s for test-fast here, against 99 s with two per core).
TG_FAST_WORKERS = -n $(shell $(PYTHON) -c 'import os; print(os.cpu_count() or 1)')
# `make test` and `test-fast` run the two suites side by side, so twostream's computing fills
# the cores while twitchgraph's tests wait. twostream runs niced: twitchgraph's
# timing-sensitive tests get the CPU as soon as they wake, and twostream takes the rest. Each
# suite's output shows when it ends (make's --output-sync), not interleaved.
SIDE_BY_SIDE := $(MAKE) --no-print-directory -j2 --output-sync=target
NICE := nice -n 10

.PHONY: demo test test-fast test-twostream test-twitchgraph suite-twostream suite-twitchgraph \
	lint docs install system-deps check-installs clean

# The venv, and uv in it (with pip, the one installer a new venv has).
$(BIN)/uv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt uv

$(STAMP): $(BIN)/uv constraints.txt twostream/pyproject.toml twitchgraph/pyproject.toml
	$(PIP) -e './twostream[dev]' -e './twitchgraph[dev]'
	touch $(STAMP)

install: $(STAMP)

# What `make test` adds: the Spark engine's extra and the docs' tools (`make demo` stays
# without them). On a fresh clone it is one install with the above: uv resolves and compiles
# site-packages once (59 s here, where three installs took 78 s).
$(TEST_STAMP): $(BIN)/uv constraints.txt twostream/pyproject.toml twitchgraph/pyproject.toml \
		docs/requirements.txt
	$(PIP) -e './twostream[dev]' -e './twitchgraph[dev,spark]' -r docs/requirements.txt
	touch $(STAMP) $(TEST_STAMP)

# Debian packages, installed when missing: Chromium drives the web map's browser tests.
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "warning: could not install chromium; browser tests will be skipped"; \
	  else echo "warning: chromium missing and not root; browser tests will be skipped"; fi; }
	@# A CJK font, so Chinese, Japanese and Korean display names draw in the PNG and the map.
	@dpkg -s fonts-noto-cjk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-cjk >/dev/null) \
	      || echo "warning: could not install fonts-noto-cjk; CJK names will draw as boxes"; \
	  else echo "warning: fonts-noto-cjk missing and not root; CJK names will draw as boxes"; fi; }
	@# Java for the Spark engine's tests (pyspark 4 needs Java 17+; bookworm's default is 17).
	@command -v java >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null) \
	      || echo "warning: could not install default-jre-headless; Spark tests will be skipped"; \
	  else echo "warning: java missing and not root; Spark tests will be skipped"; fi; }

lint: $(STAMP)
	$(BIN)/ruff check .

# Each project runs its own suite from its own folder (its own pytest settings and rootdir).
test-twostream: $(STAMP) lint
	cd twostream && $(PYTEST) $(TS_WORKERS)

test-twitchgraph: $(TEST_STAMP) system-deps lint
	cd twitchgraph && $(PYTEST) $(TG_WORKERS)

test: $(TEST_STAMP) system-deps lint docs
	@echo "twostream's and twitchgraph's suites run side by side; each one's output shows when it ends"
	$(SIDE_BY_SIDE) suite-twostream suite-twitchgraph

# The quick check for contributors: everything not marked slow, both projects.
test-fast: $(STAMP) lint
	$(SIDE_BY_SIDE) SUITE_ARGS='-m "not slow" -q' TG_WORKERS='$(TG_FAST_WORKERS)' \
		suite-twostream suite-twitchgraph

# One suite each, for the two targets above (no set-up of their own).
suite-twostream:
	cd twostream && $(NICE) $(PYTEST) $(TS_WORKERS) $(SUITE_ARGS)

suite-twitchgraph:
	cd twitchgraph && $(PYTEST) $(TG_WORKERS) $(SUITE_ARGS)

# The docs site, strictly: a warning (a broken link, a page outside the nav) fails the build.
docs: $(TEST_STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

# Each project alone, in a fresh venv of its own: it installs without the other's heavy
# dependencies and its demo runs (CI runs this after the suite).
check-installs:
	bash scripts/check-installs.sh

demo: $(STAMP)
	$(BIN)/twostream demo
	$(BIN)/twitchgraph demo

clean:
	rm -rf $(VENV) demo-output site
