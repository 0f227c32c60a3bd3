# make run   — set up (first time) and start the portal with demo data
# make test  — run the whole test suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set)

PYTHON ?= $(shell command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# The proxies whose X-Forwarded-For/-Proto uvicorn believes (comma-separated
# addresses, as its --forwarded-allow-ips); unset, none: every client is the
# address it connects from, whatever headers it sends (see the Procfile).
FORWARDED_ALLOW_IPS ?=
UVICORN_PROXY = $(if $(strip $(FORWARDED_ALLOW_IPS)),--proxy-headers --forwarded-allow-ips '$(strip $(FORWARDED_ALLOW_IPS))',--no-proxy-headers)
# The settings read them too: links in messages point at this server
# unless PUBLIC_BASE_URL says otherwise.
export HOST PORT

.PHONY: run test venv migrate demo lint format bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "Python 3.12 or newer is needed (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when a requirements file changes.
$(VENV)/.installed: $(BIN)/python requirements.txt requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

migrate: venv
	$(BIN)/python manage.py migrate --no-input

demo: migrate
	$(BIN)/python manage.py load_demo

# The demo day (simulate_deliveries) drives the demo driver through the API
# beside the server, and stops with it: it takes Ctrl+C itself (a shell's
# background job starts with SIGINT ignored, which it undoes), and the traps
# stop it (SIGTERM) however the server ends, then wait while it revokes its
# API key. The demo shop (demo_shop, the status widget on another origin)
# listens on PORT+1 and is stopped the same way.
run: demo
	@$(BIN)/python manage.py portal_urls --host $(HOST) --port $(PORT)
	@$(BIN)/python manage.py demo_shop --host $(HOST) --port $(PORT) & shop=$$!; \
	$(BIN)/python manage.py simulate_deliveries --base-url http://$(HOST):$(PORT) & sim=$$!; \
	trap 'kill $$sim $$shop 2>/dev/null; wait $$sim $$shop' EXIT; trap 'exit 130' INT TERM; \
	$(BIN)/python -m uvicorn tracking_portal.asgi:application --host $(HOST) --port $(PORT) \
		--timeout-graceful-shutdown 5 --lifespan off $(UVICORN_PROXY)

test: venv
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
