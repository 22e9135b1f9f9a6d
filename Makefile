# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark

.PHONY: demo test lint install system-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The Spark engine's extra, for the tests only: `make demo` stays Spark-free.
$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,spark]'
	touch $(SPARK_STAMP)

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

test: $(STAMP) $(SPARK_STAMP) system-deps lint
	$(BIN)/python -m pytest

demo: $(STAMP)
	$(BIN)/twostream demo
	$(BIN)/twitchgraph demo

clean:
	rm -rf $(VENV) demo-output
