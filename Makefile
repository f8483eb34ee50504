# The two set-up commands (README): `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test install lint run-distributed bench clean

run: install  ## the whole system in one process: SQLite, in-process bus, seeded demo
	ENVIRONMENT=development $(BIN)/sangkien run

test: install  ## every test, against the real PostgreSQL, RabbitMQ and Redis on loopback
	bash scripts/ensure-services.sh
	bash scripts/ensure-browser.sh
	bash scripts/ensure-promtool.sh
	$(BIN)/python -m pytest

install: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

run-distributed: install  ## five processes against PostgreSQL, RabbitMQ and Redis
	bash scripts/run-distributed.sh

clean:
	rm -rf var
