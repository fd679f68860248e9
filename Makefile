# Two entry points matter: `make synth` and `make test`. Both set up everything they need on first use.
# Every target has a `## ` description on its rule line: `make help` lists them.
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
# Material for MkDocs prints a notice about its successor on every build.
export NO_MKDOCS_2_WARNING := 1

.PHONY: help setup synth test snapshot-update check-env deploy diff destroy outputs bench costs lint docs clean

# A target defined in both branches of a conditional (synth) is listed once.
help: ## List the targets with what each does
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)$$/\1\t\2/' | \
	  awk -F '\t' '!listed[$$1]++ { printf "  make %-16s %s\n", $$1, $$2 }'

# A changed requirement rebuilds the environment from scratch, so nothing a pin no longer names lingers.
$(VENV)/.installed: requirements.txt requirements-sdk.txt requirements-dev.txt
	@echo "Setting up the Python environment in $(VENV) (first run: a few minutes and about 1.4 GB; see docs/getting-started.md)"
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

setup: $(VENV)/.installed $(VENV)/bin/mlops node_modules/.installed ## Create .venv (with the mlops command) and node_modules from the pins (synth and test do it on first use)

# `make synth` constructs every environment; `make synth ENV=<name>` only that one, as deploy, diff and destroy do.
# The CLI ends a synth of several stacks with "Supply a stack id (...) to display its template", which reads like
# an error; it is dropped, everything else (errors included) is shown, and the CLI's exit status is kept.
ifeq ($(origin ENV),command line)
synth: check-env setup ## Synthesize every environment into cdk.out/ (ENV=<name>: that one alone; no AWS calls, cdk-nag included)
	@set -o pipefail; $(CDK) synth '$(ENV)/*' -c env=$(ENV) --quiet --no-notices 2>&1 | { grep -v '^Supply a stack id (' || true; }
else
synth: setup ## Synthesize every environment into cdk.out/ (ENV=<name>: that one alone; no AWS calls, cdk-nag included)
	@set -o pipefail; $(CDK) synth '**' --quiet --no-notices 2>&1 | { grep -v '^Supply a stack id (' || true; }
endif

# One worker per core (work stealing evens out the long deployer scenarios). What the session synthesizes
# is synthesized once, by whichever worker needs it first, and read by the other; each worker works in its
# own temporary folders.
test: setup ## Run the whole suite (unit, snapshots, behaviour against moto, lint, docs)
	$(PY) -m pytest -n auto --dist worksteal

snapshot-update: setup ## Rewrite the template snapshots after an intended change (review the diff)
	$(PY) -m pytest tests/snapshot --snapshot-update

# The CDK CLI selects no stacks for an unknown environment and exits 0 having done nothing. The app itself,
# given -c env=<name>, constructs that environment alone (and refuses an unknown name too).
check-env: ## Fail unless ENV is one of the environments
	@for environment in $(ENVIRONMENTS); do [ "$$environment" = "$(ENV)" ] && exit 0; done; \
	  echo "ENV=$(ENV) is not an environment; the environments are: $(ENVIRONMENTS)" >&2; exit 1

deploy: check-env setup ## Deploy every stack of ENV (default dev) with that account's credentials
	$(CDK) deploy '$(ENV)/*' -c env=$(ENV) --no-notices

diff: check-env setup ## Show what a deploy of ENV would change
	$(CDK) diff '$(ENV)/*' -c env=$(ENV) --no-notices

destroy: check-env setup ## Delete every stack of ENV (prod keeps its data: see docs/guides/platform-engineer.md)
	$(CDK) destroy '$(ENV)/*' -c env=$(ENV) --no-notices

# Reads CloudFormation with your credentials, after checking they belong to the environment's account.
outputs: check-env setup ## Print the outputs of ENV's deployed stacks (bucket names, upload URI, endpoint, state machines, dashboard, Studio)
	@$(VENV)/bin/mlops outputs --env $(ENV)

bench: setup ## Measure synth, the tests and the deployer against their budgets
	$(PY) scripts/bench.py

# Each environment's monthly cost while nothing runs, from every environment's templates and costs/prices.yaml.
costs: synth ## Print each environment's idle monthly cost, priced from the synthesized templates
	$(PY) scripts/costs.py cdk.out

lint: $(VENV)/.installed ## Check the Python code with ruff (rules in pyproject.toml)
	$(VENV)/bin/ruff check .

docs: $(VENV)/.installed ## Build the documentation site from docs/ into site/, failing on a broken link or anchor
	$(PY) -m mkdocs build --strict

clean: ## Remove cdk.out, site, .pytest_cache and .bench (keeps .venv and node_modules)
	rm -rf cdk.out site .pytest_cache .bench
