# `make run` serves the demo on the sandbox; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := DEBUG=1

.PHONY: run test lint format bench clean screenshots

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(DEMO) $(PY) manage.py migrate --noinput
	$(DEMO) $(PY) manage.py setup_demo
	$(DEMO) $(PY) manage.py runserver 127.0.0.1:8000

# Browser tests (tests/browser/) run when /usr/bin/chromium exists and are skipped, with
# the reason, when it does not; VEHICLE_AUTH_BROWSER_TESTS=required makes that an error.
test: $(STAMP)
	$(PY) -m pytest

# Runs every script under bench/ and prints one table of figures and targets (a few
# minutes; PostgreSQL at 127.0.0.1:5432 when it answers, else SQLite). See the README's
# "Performance" section.
bench: $(STAMP)
	$(PY) bench/run_all.py

# Regenerates docs/screenshots/*.png (the README's) in Chromium on fresh demo data.
screenshots: $(STAMP)
	$(PY) scripts/screenshots.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm .pytest_cache
