# Two entry points matter: `make synth` and `make test`. Both set up everything they need on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
ENV ?= dev
ENVIRONMENTS := dev staging prod

# jsii prints a large end-of-life banner for node 20 on every process start.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# Offline by design: no analytics or notices fetched by the CDK CLI.
export CDK_DISABLE_CLI_TELEMETRY := true
# Bytecode is kept even where the environment turns it off (PYTHONDONTWRITEBYTECODE=1): without it every
# pytest worker compiles and rewrites the whole suite again on each run, and every synth compiles the app.
export PYTHONDONTWRITEBYTECODE :=

.PHONY: setup synth test snapshot-update check-env deploy diff destroy bench lint clean

# A changed requirement rebuilds the environment from scratch, so nothing a pin no longer names lingers.
$(VENV)/.installed: requirements.txt requirements-sdk.txt requirements-dev.txt
	@echo "Setting up the Python environment in $(VENV) (first run: a few minutes and about 1.4 GB; see README, Quick start)"
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check --progress-bar off -r requirements-dev.txt
	$(PY) -m pip install --disable-pip-version-check --progress-bar off --no-deps -r requirements-sdk.txt
	touch $@

# The `mlops` command, installed editable from this working tree with the pins above as its dependencies
# (pip builds it with the setuptools pyproject.toml names). A changed pyproject.toml reinstalls only the command.
$(VENV)/bin/mlops: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install --disable-pip-version-check --progress-bar off --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed $(VENV)/bin/mlops node_modules/.installed

# Synth and the tests need the environment, not the installed command (the tests run it in-process).
synth: $(VENV)/.installed node_modules/.installed
	$(CDK) synth '**' --quiet --no-notices

# One worker per core (work stealing evens out the long deployer scenarios). What the session synthesizes
# is synthesized once, by whichever worker needs it first, and read by the other; each worker works in its
# own temporary folders.
test: $(VENV)/.installed node_modules/.installed
	$(PY) -m pytest -n auto --dist worksteal

snapshot-update: $(VENV)/.installed node_modules/.installed
	$(PY) -m pytest tests/snapshot --snapshot-update

# The CDK CLI selects no stacks for an unknown environment and exits 0 having done nothing.
check-env:
	@for environment in $(ENVIRONMENTS); do [ "$$environment" = "$(ENV)" ] && exit 0; done; \
	  echo "ENV=$(ENV) is not an environment; the environments are: $(ENVIRONMENTS)" >&2; exit 1

deploy: check-env setup
	$(CDK) deploy '$(ENV)/*' --no-notices

diff: check-env setup
	$(CDK) diff '$(ENV)/*' --no-notices

destroy: check-env setup
	$(CDK) destroy '$(ENV)/*' --no-notices

bench: setup
	$(PY) scripts/bench.py

clean:
	rm -rf cdk.out .pytest_cache .bench
