# Two commands: `make run` (set up everything, serve the portal) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# `make run` also plays the SIP layer: simulated calls to the demo number, so the Live page moves.
# `make run SIMULATE=0` serves without them.
SIMULATE ?= 1
SIMULATE_RATE ?= 0.2

.PHONY: run test lint fmt bench clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

run: $(VENV)/.installed
	DEBUG=true $(PY) manage.py migrate --noinput
	DEBUG=true $(PY) manage.py seed_demo
ifeq ($(SIMULATE),0)
	DEBUG=true $(PY) manage.py runserver 127.0.0.1:$(PORT)
else
	@# Both in the background (SIGINT ignored); Ctrl-C reaches this shell, which stops the simulator
	@# first (its calls end while the server still answers), then the server.
	@DEBUG=true $(PY) manage.py runserver 127.0.0.1:$(PORT) & server=$$!; \
	DEBUG=true $(PY) manage.py simulate_calls --url http://127.0.0.1:$(PORT) --rate $(SIMULATE_RATE) \
		--duration 0 --report-every 30 & sim=$$!; \
	trap 'trap "" INT TERM; kill -TERM $$sim 2>/dev/null; wait $$sim; \
		kill -TERM $$server 2>/dev/null; wait $$server' EXIT; \
	trap 'exit 0' INT TERM; \
	wait $$server
endif

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles .pytest_cache .ruff_cache
