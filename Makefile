# Set-up and checks. `make run` and `make test` need nothing installed by hand:
# the venv, the Python packages and (for tests) the Debian servers are
# installed here when missing.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the test suite drives for real.
TEST_PACKAGES := memcached redis-server redis-tools chromium

.PHONY: run test test-only lint typecheck docs dist screenshot bench servers-installed clean

$(VENV)/.installed: setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(PY) -m sample_app

# Install the servers the tests start (each on its own free loopback port).
# policy-rc.d stops the packages from starting system-wide services on the
# default ports as a side effect of installing them.
servers-installed:
	@missing=""; \
	for pkg in $(TEST_PACKAGES); do \
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

# The docs are built with -W by tests/test_docs.py, inside the suite.
test: $(VENV)/.installed servers-installed
	$(MAKE) lint typecheck test-only

test-only: $(VENV)/.installed
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check tipsessions tests sample_app config
	$(VENV)/bin/ruff format --check tipsessions tests sample_app config

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
	$(PY) -m sample_app.screenshot docs/_static/sample-app.png

bench: $(VENV)/.installed
	$(PY) -m tests.bench

clean:
	rm -rf $(VENV) dist build docs/_build .pytest_cache .mypy_cache .ruff_cache *.egg-info
