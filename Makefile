# Growth Diary: one-machine workflow. `make help` lists the targets.
# SERVICE=<auth|goals|diary|stories> narrows run/stop/restart/migrate/logs to one service.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
# the local runner, deploy/local.py: standard library only, so it runs before .venv exists
LOCAL   := python3 -m deploy
SERVICE ?=
SERVICES := auth goals diary stories
ARGS    ?=

.PHONY: help install run stop restart status logs bootstrap migrate test test-unit bench lint \
        dlq replay-dlq nginx-compose clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "  SERVICE=<$(shell echo $(SERVICES) | tr ' ' '|')> narrows run, stop, restart, migrate, logs, dlq."
	@echo "  ARGS=... is passed to pytest (make test ARGS='-k goals -x') and bench (ARGS=http)."

install: ## .venv with the project and test extras, and nginx (apt) if missing; no-op when up to date
	@$(LOCAL) install

run: ## start everything (or SERVICE=goals: deploy that service alone) and wait until ready
	@$(LOCAL) run $(SERVICE)

stop: ## stop everything gracefully (or SERVICE=goals: just that service)
	@$(LOCAL) stop $(SERVICE)

restart: ## graceful rolling restart of SERVICE (default: all services)
	@$(LOCAL) restart $(SERVICE)

status: ## show processes, pids and readiness
	@$(LOCAL) status

logs: ## follow the logs (SERVICE=goals: only that service)
	@$(LOCAL) logs $(SERVICE)

bootstrap: install ## create the database, roles and schemas (idempotent)
	@$(PY) -m shared.bootstrap

migrate: bootstrap ## alembic upgrade head for SERVICE (default: every service)
	@set -e; for svc in $(or $(SERVICE),$(SERVICES)); do \
		echo "$$svc: migrate"; $(PY) -m shared.migrate $$svc upgrade head; \
	done

test: install ## run the test suite (it bootstraps its own database growth_diary_test)
	$(VENV)/bin/pytest -q $(ARGS)

test-unit: install ## only the tests that need neither PostgreSQL nor RabbitMQ (seconds)
	$(VENV)/bin/pytest -q -m unit $(ARGS)

bench: install ## AMQP floor vs our pipeline, HTTP via the gateway, stories (ARGS=http|pipeline|stories: one)
	$(PY) -m bench $(ARGS)

lint: install ## ruff + mypy over all our Python, shell syntax, the compose gateway config is current
	$(VENV)/bin/ruff check shared services tests deploy bench
	$(VENV)/bin/mypy shared services tests deploy bench
	bash -n .ci/run
	$(PY) deploy/render_nginx.py compose --check

dlq: install ## list SERVICE's dead-lettered events
	@test -n "$(SERVICE)" || { echo "usage: make dlq SERVICE=<$(SERVICES)>" >&2; exit 2; }
	$(PY) -m shared.dlq $(SERVICE) list

replay-dlq: install ## move SERVICE's dead-lettered events back to its queue
	@test -n "$(SERVICE)" || { echo "usage: make replay-dlq SERVICE=<$(SERVICES)>" >&2; exit 2; }
	$(PY) -m shared.dlq $(SERVICE) replay

nginx-compose: ## regenerate deploy/nginx.compose.conf from deploy/nginx.conf.template
	python3 deploy/render_nginx.py compose

clean: ## stop everything, remove var/ (logs, pids, keys, mail) and tool caches
	@$(LOCAL) stop
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
