# The README's two commands: `make run` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 7860
PYTEST_ARGS ?=

.PHONY: run dev test lint install browser migrate bench clean screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the pins change.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py bootstrapsuperuser

run: migrate
	$(BIN)/gunicorn langflow_site.asgi:application --config langflow_site/gunicorn.conf.py

dev: migrate
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

browser:
	@scripts/ensure-chromium

# ruff and mypy (ruff.toml, mypy.ini): part of `make test`, so CI runs them too.
lint: install
	$(BIN)/ruff check .
	@# mypy's Django plugin loads the settings, which read DATA_DIR's secrets: prepare them first.
	$(BIN)/python -c "from langflow_site.datadir import prepare; prepare()"
	$(BIN)/mypy

test: install browser lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Refresh the README's screenshots (docs/screenshots/) from the browser tests' realistic data.
screenshots: install browser
	SCREENSHOT_DIR=docs/screenshots $(BIN)/python -m pytest -q tests/browser/test_screenshots.py --liveserver=127.0.0.1:$(PORT)

# Benchmarks (not part of `make test`): the real server under wrk; prints ratios, writes bench/results/.
$(VENV)/.bench-installed: bench/requirements.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r bench/requirements.txt
	touch $@

bench: install $(VENV)/.bench-installed
	@scripts/ensure-wrk
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) staticfiles
