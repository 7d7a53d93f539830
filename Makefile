# Development and CI tasks. `make test` is what CI runs (through .ci/run).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Rewritten after each successful install: the venv is reinstalled when setup.cfg changes.
VENV_STAMP := $(VENV)/.installed-setup.cfg
TOOLS := .tools
NEWMAN := $(TOOLS)/node_modules/.bin/newman
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: venv run postgres-tools node-tools lint test clean

venv: $(VENV_STAMP)

$(VENV_STAMP): setup.cfg
	@# A venv without pip is the leftover of a failed creation (e.g. ensurepip missing).
	if [ ! -x $(BIN)/pip ]; then rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); fi
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

# The development profile (no authentication, a loud warning in the log) unless
# SECURITY_PROFILE says otherwise; see "Production security" in the README.
run: export SECURITY_PROFILE ?= development
run: venv
	$(BIN)/fhir-agenda migrate
	$(BIN)/fhir-agenda load-demo
	@echo "FHIR server: http://$(HOST):$(PORT)/fhir (security profile: $$SECURITY_PROFILE)"
	FHIR_BASE_URL="$${FHIR_BASE_URL:-http://$(HOST):$(PORT)/fhir}" \
		exec $(BIN)/gunicorn -c gunicorn.conf.py -b $(HOST):$(PORT) -w 2 wsgi:app

# PostgreSQL server binaries for the tests (Debian package). The main cluster the package
# would create and start is not needed: the tests start their own throwaway servers.
postgres-tools:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
			&& ! command -v initdb >/dev/null 2>&1; then \
		echo "Installing PostgreSQL (Debian packages)..."; \
		bash scripts/apt-install.sh postgresql-common; \
		$$([ "$$(id -u)" -eq 0 ] || echo sudo) sed -ri \
			's/^#? *create_main_cluster *=.*/create_main_cluster = false/' \
			/etc/postgresql-common/createcluster.conf; \
		bash scripts/apt-install.sh postgresql; \
	fi

node-tools: $(NEWMAN)

$(NEWMAN):
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "Installing Node.js and npm (Debian packages)..."; \
		bash scripts/apt-install.sh nodejs npm; \
	fi
	npm install --no-audit --no-fund --prefix $(TOOLS) newman@6

lint: venv
	$(BIN)/ruff check .

test: venv postgres-tools node-tools lint
	$(BIN)/pytest
	bash scripts/newman.sh

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
