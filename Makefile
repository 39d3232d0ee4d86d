# Two commands set up a fresh machine: `make dev` serves on embedded defaults, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# HOST/PORT: `PORT=9000 make dev`, else the values in .env (which gunicorn.conf.py also reads), else these.
DOTENV_VALUE = $(shell sed -n 's/^$(1)=\([^[:space:]\#]*\).*/\1/p' .env 2>/dev/null | tail -n 1)
PORT ?= $(or $(call DOTENV_VALUE,PORT),8000)
HOST ?= $(or $(call DOTENV_VALUE,HOST),127.0.0.1)

.PHONY: dev test test-fast lint bench image-test clean

# Stamp files: reinstall only when the pinned requirements change.
$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

dev: $(VENV)/.runtime
	APP_ENV=dev $(BIN)/flask db upgrade
	APP_ENV=dev $(BIN)/flask wwhd load-samples
	@echo "Demo accounts (APP_ENV=dev only):"
	@APP_ENV=dev $(BIN)/flask wwhd ensure-demo-user
	@echo "Serving on http://$(HOST):$(PORT)"
	APP_ENV=dev HOST=$(HOST) PORT=$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: $(VENV)/.dev
	$(BIN)/pytest -q

# Everything but the tests marked slow (> ~10 s each: servers, subprocesses, big files).
test-fast: $(VENV)/.dev
	$(BIN)/pytest -q -m "not slow"

LINT_PATHS := wwhd tests bench scripts migrations wsgi.py gunicorn.conf.py

lint: $(VENV)/.dev
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/hadolint Dockerfile
	$(BIN)/cfn-lint copilot/api/addons/*.yml

bench: $(VENV)/.dev
	$(BIN)/python -m bench.run_all

# Build the real Dockerfile and run it (scripts/image_test: private dockerd, stand-in base when no
# registry answers, health, uid, migrations, streams, drained stop). Needs root, docker.io, debootstrap.
# The stand-in's debootstrap rootfs is kept here between runs (saves ~2.5 min).
WWHD_IMAGE_TEST_CACHE ?= /var/cache/wwhd-image-test
image-test: $(VENV)/.runtime
	WWHD_IMAGE_TEST_CACHE=$(WWHD_IMAGE_TEST_CACHE) $(BIN)/python scripts/image_test

clean:
	rm -rf $(VENV) data
