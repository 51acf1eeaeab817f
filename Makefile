# Two commands: `make run` (set up everything, serve the portal) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# `make run` also plays the SIP layer: simulated calls to the demo number, and a dialer worker whose
# simulator gateway plays the callees of the demo campaign, so Live, Calls and Campaigns move.
# `make run SIMULATE=0` serves without either. Both run the reports' rollup fold worker.
SIMULATE ?= 1
SIMULATE_RATE ?= 0.2
# Calls of history `make run` gives the demo center over the last 30 days (first run only).
HISTORY_CALLS ?= 3000

.PHONY: run test lint fmt bench clean sip-demo

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

run: $(VENV)/.installed
	DEBUG=true $(PY) manage.py migrate --noinput
	DEBUG=true $(PY) manage.py seed_demo
ifneq ($(HISTORY_CALLS),0)
	@# A month of calls for Reports and the dashboard, once (a second `make run` adds none).
	DEBUG=true $(PY) manage.py generate_calls --center acme --count $(HISTORY_CALLS) --days 30 --once
endif
ifeq ($(SIMULATE),0)
	@# The rollups' fold worker beside the server: the reports follow the calls (reporting/rollups.py).
	@DEBUG=true $(PY) manage.py runserver 127.0.0.1:$(PORT) & server=$$!; \
	DEBUG=true $(PY) manage.py fold_rollups & folder=$$!; \
	trap 'trap "" INT TERM; kill -TERM $$folder $$server 2>/dev/null; wait $$folder $$server' EXIT; \
	trap 'exit 0' INT TERM; \
	wait $$server
else
	@# All in the background (SIGINT ignored); Ctrl-C reaches this shell, which stops the simulator
	@# and the dialer first (their calls end while the server still answers), then the rollups'
	@# fold worker and the server.
	@DEBUG=true $(PY) manage.py runserver 127.0.0.1:$(PORT) & server=$$!; \
	DEBUG=true $(PY) manage.py fold_rollups & folder=$$!; \
	DEBUG=true $(PY) manage.py simulate_calls --url http://127.0.0.1:$(PORT) --rate $(SIMULATE_RATE) \
		--duration 0 --report-every 30 & sim=$$!; \
	DEBUG=true $(PY) manage.py run_dialer --gateway simulator --url http://127.0.0.1:$(PORT) & dialer=$$!; \
	trap 'trap "" INT TERM; kill -TERM $$sim $$dialer 2>/dev/null; wait $$sim $$dialer; \
		kill -TERM $$folder $$server 2>/dev/null; wait $$folder $$server' EXIT; \
	trap 'exit 0' INT TERM; \
	wait $$server
endif

# With `make run` serving (another terminal): real SIP calls through Kamailio and SIPp into the demo
# center, shown on Live. Needs Debian's kamailio, kamailio-utils-modules, kamailio-extra-modules and
# sip-tester. `make sip-demo SIP_RATE=1` calls faster.
SIP_RATE ?= 0.2
sip-demo: $(VENV)/.installed
	DEBUG=true $(PY) manage.py sip_demo --api-url http://127.0.0.1:$(PORT) --rate $(SIP_RATE)

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
