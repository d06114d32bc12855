# Set-up and checks. `make run` and `make test` need nothing installed by hand:
# the venv, the Python packages and (for tests) the Debian servers are
# installed here when missing.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the test suite drives for real.
TEST_PACKAGES := memcached redis-server redis-tools chromium
# What `make bench` adds: the HTTP load generator.
BENCH_PACKAGES := wrk

.PHONY: run test test-only lint typecheck docs dist screenshot bench fuzz servers-installed bench-tools-installed clean

$(VENV)/.installed: setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(PY) -m sample_app

# Install the Debian packages in $(1) that are missing. policy-rc.d stops
# them from starting system-wide services on the default ports as a side
# effect of installing them.
define apt_install_missing
	@missing=""; \
	for pkg in $(1); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "ok installed" || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  added_policy=""; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee /usr/sbin/policy-rc.d >/dev/null; \
	    $(SUDO) chmod +x /usr/sbin/policy-rc.d; added_policy=1; \
	  fi; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  status=$$?; \
	  [ -n "$$added_policy" ] && $(SUDO) rm -f /usr/sbin/policy-rc.d; \
	  exit $$status; \
	fi
endef

# The servers the tests start (each on its own free loopback port).
servers-installed:
	$(call apt_install_missing,$(TEST_PACKAGES))

# The docs are built with -W by tests/test_docs.py, inside the suite.
test: $(VENV)/.installed servers-installed
	$(MAKE) lint typecheck test-only

# The suite runs the fuzzer for a few seconds too, so it needs atheris.
test-only: $(VENV)/.installed $(VENV)/.fuzz-installed
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check tipsessions tests sample_app config bench fuzz
	$(VENV)/bin/ruff format --check tipsessions tests sample_app config bench fuzz

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

docs: $(VENV)/.installed
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs docs/_build/html

# A source distribution and a wheel built from it, in dist/, checked the way
# PyPI checks an upload (metadata, and the README rendered as the long
# description).
dist: $(VENV)/.installed
	rm -rf dist
	$(PY) -m build --outdir dist .
	$(VENV)/bin/twine check --strict dist/*

screenshot: $(VENV)/.installed servers-installed
	$(PY) -m sample_app.screenshot docs/_static/sample-app.png --devices docs/_static/devices.png

# atheris is for fuzzing only, kept out of the package's extras.
$(VENV)/.fuzz-installed: $(VENV)/.installed fuzz/requirements.txt
	$(PY) -m pip install --quiet -r fuzz/requirements.txt
	touch $@

# Coverage-guided fuzzing of every decoding path, for FUZZ_SECONDS (default
# 600); prints executions and crashes, and fails on a crash.
FUZZ_SECONDS ?= 600
fuzz: $(VENV)/.fuzz-installed
	$(PY) fuzz/run.py --seconds $(FUZZ_SECONDS)

bench-tools-installed:
	$(call apt_install_missing,$(BENCH_PACKAGES))

# Peers and tools only the bench uses, kept out of setup.py's extras.
$(VENV)/.bench-installed: $(VENV)/.installed bench/requirements.txt
	$(PY) -m pip install --quiet -r bench/requirements.txt
	touch $@

# Never part of `make test`: about 9 minutes (QUICK=1: under 2). AGAINST=<rev>
# also measures that revision's tipsessions in the same rounds.
bench: $(VENV)/.bench-installed servers-installed bench-tools-installed
	$(PY) -m bench $(if $(QUICK),--quick) $(if $(AGAINST),--against $(AGAINST))

clean:
	rm -rf $(VENV) dist build docs/_build .pytest_cache .mypy_cache .ruff_cache *.egg-info
