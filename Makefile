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

.PHONY: setup synth test snapshot-update check-env deploy diff destroy outputs bench costs lint clean

# A changed requirement rebuilds the environment from scratch, so nothing a pin no longer names lingers.
$(VENV)/.installed: requirements.txt requirements-sdk.txt requirements-dev.txt
	@echo "Setting up the Python environment in $(VENV) (first run: a few minutes and about 1.4 GB; see README, Quick start)"
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check --progress-bar off -r requirements-dev.txt
	$(PY) -m pip install --disable-pip-version-check --progress-bar off --no-deps -r requirements-sdk.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed

# `make synth` constructs every environment; `make synth ENV=<name>` only that one, as deploy, diff and destroy do.
ifeq ($(origin ENV),command line)
synth: check-env setup
	$(CDK) synth '$(ENV)/*' -c env=$(ENV) --quiet --no-notices
else
synth: setup
	$(CDK) synth '**' --quiet --no-notices
endif

# One worker per core (work stealing evens out the long deployer scenarios). What the session synthesizes
# is synthesized once, by whichever worker needs it first, and read by the other; each worker works in its
# own temporary folders.
test: setup
	$(PY) -m pytest -n auto --dist worksteal

snapshot-update: setup
	$(PY) -m pytest tests/snapshot --snapshot-update

# The CDK CLI selects no stacks for an unknown environment and exits 0 having done nothing. The app itself,
# given -c env=<name>, constructs that environment alone (and refuses an unknown name too).
check-env:
	@for environment in $(ENVIRONMENTS); do [ "$$environment" = "$(ENV)" ] && exit 0; done; \
	  echo "ENV=$(ENV) is not an environment; the environments are: $(ENVIRONMENTS)" >&2; exit 1

deploy: check-env setup
	$(CDK) deploy '$(ENV)/*' -c env=$(ENV) --no-notices

diff: check-env setup
	$(CDK) diff '$(ENV)/*' -c env=$(ENV) --no-notices

destroy: check-env setup
	$(CDK) destroy '$(ENV)/*' -c env=$(ENV) --no-notices

# Bucket names, upload URIs, the endpoint, the state machines, the dashboard and Studio of a deployed environment.
outputs: check-env setup
	$(PY) scripts/stack_outputs.py $(ENV)

bench: setup
	$(PY) scripts/bench.py

# Each environment's monthly cost while nothing runs, from every environment's templates and costs/prices.yaml.
costs: setup
	$(CDK) synth '**' --quiet --no-notices
	$(PY) scripts/costs.py cdk.out

clean:
	rm -rf cdk.out .pytest_cache .bench
