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
# The OpenID Connect provider standing in for Pro Santé Connect (scripts/dev_idp.mjs): the
# development identity provider of `make run`, newman and the end-to-end tests. Pinned; the
# 8.x line runs on Debian 12's Node.js 18.
OIDC_PROVIDER_VERSION := 8.8.1
OIDC_PROVIDER := $(TOOLS)/node_modules/oidc-provider/package.json
IDP_PORT ?= 5001
# Node.js and npm from Debian when npm is missing.
NPM_CHECK := if ! command -v npm >/dev/null 2>&1; then \
		echo "Installing Node.js and npm (Debian packages)..."; \
		bash scripts/apt-install.sh nodejs npm; \
	fi
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: venv run postgres-tools node-tools browser-tools lint test clean

venv: $(VENV_STAMP)

$(VENV_STAMP): setup.cfg
	@# A venv without pip is the leftover of a failed creation (e.g. ensurepip missing).
	if [ ! -x $(BIN)/pip ]; then rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); fi
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

# The development profile (no authentication, a loud warning in the log) unless
# SECURITY_PROFILE says otherwise; see "Production security" in the README. Every command
# (migrate, load-demo, the worker, gunicorn) reads the same settings. The delivery worker
# runs beside gunicorn (notifications, /readyz heartbeat, SLA page history) and stops with
# it; both share PROMETHEUS_MULTIPROC_DIR (emptied at each start) so that /metrics and the
# SLA page see every process. gunicorn's control socket gets a path of this user and this
# checkout (gunicorn >= 27 would otherwise share one per user between checkouts).
run: export SECURITY_PROFILE ?= development
run: export FHIR_BASE_URL ?= http://$(HOST):$(PORT)/fhir
run: export PUBLIC_WEB_URL ?= http://$(HOST):$(PORT)
run: export PROMETHEUS_MULTIPROC_DIR ?= $(CURDIR)/instance/prometheus
run: venv $(OIDC_PROVIDER)
	rm -rf "$$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$$PROMETHEUS_MULTIPROC_DIR"
	$(BIN)/fhir-agenda migrate
	$(BIN)/fhir-agenda load-demo
	@echo "FHIR server: $$FHIR_BASE_URL (security profile: $$SECURITY_PROFILE)"
	control=(); \
	if $(BIN)/python -c 'import sys; from gunicorn.config import Config; \
			sys.exit("control_socket" not in Config().settings)'; then \
		control=(--control-socket "$${XDG_RUNTIME_DIR:-/tmp}/fhir-agenda-$$(id -u)-$$(printf %s \
			"$(CURDIR)" | cksum | cut -d' ' -f1).ctl"); \
	fi; \
	idp=""; \
	if [ "$$SECURITY_PROFILE" = development ] && [ -z "$${OIDC_DISCOVERY_URL:-}" ]; then \
		DEV_IDP_PORT=$(IDP_PORT) DEV_IDP_HOST=$(HOST) \
		DEV_IDP_REDIRECT_URIS="$$PUBLIC_WEB_URL/sso/retour" \
		DEV_IDP_POST_LOGOUT_URIS="$$PUBLIC_WEB_URL/deconnexion/terminee" \
			node scripts/dev_idp.mjs & idp=$$!; \
		export OIDC_DISCOVERY_URL=http://$(HOST):$(IDP_PORT)/.well-known/openid-configuration \
			OIDC_CLIENT_ID=fhir-agenda-dev OIDC_CLIENT_SECRET=dev-secret-not-secret \
			OIDC_PROVIDER_NAME="Pro Santé Connect (développement)"; \
		echo "Development identity provider (NOT Pro Santé Connect): http://$(HOST):$(IDP_PORT)"; \
		echo "Booking link as SAS opens it: $$($(BIN)/fhir-agenda sas-link 2>/dev/null)"; \
	fi; \
	$(BIN)/fhir-agenda worker & worker=$$!; \
	trap 'kill -TERM $$worker $$idp 2>/dev/null; wait $$worker' EXIT; \
	trap 'exit 130' INT; trap 'exit 143' TERM; \
	$(BIN)/gunicorn -c gunicorn.conf.py -b $(HOST):$(PORT) -w 2 "$${control[@]}" wsgi:app

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

node-tools: $(NEWMAN) $(OIDC_PROVIDER)

$(NEWMAN):
	@$(NPM_CHECK)
	npm install --no-audit --no-fund --prefix $(TOOLS) newman@6

$(OIDC_PROVIDER):
	@$(NPM_CHECK)
	npm install --no-audit --no-fund --save-exact --prefix $(TOOLS) \
		oidc-provider@$(OIDC_PROVIDER_VERSION)

# Chromium for the browser tests (Debian's package, driven by Playwright from the venv:
# Playwright never downloads a browser here).
browser-tools:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "Installing Chromium (Debian package)..."; \
		bash scripts/apt-install.sh chromium; \
	fi

lint: venv
	$(BIN)/ruff check .

test: venv postgres-tools node-tools browser-tools lint
	$(BIN)/pytest
	bash scripts/newman.sh

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
