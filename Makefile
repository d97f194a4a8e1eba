# Growth Diary: one-machine workflow. `make help` lists the targets.
# SERVICE=<auth|goals|diary|stories> narrows run/stop/restart/migrate/logs to one service.
# The seed's Prisma commands each have a twin here (README, "The seed's commands here").

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
# the local runner, deploy/local.py: standard library only, so it runs before .venv exists
LOCAL   := python3 -m deploy
SERVICE ?=
SERVICES := auth goals diary stories
ARGS    ?=
NAME    ?=
ENV     ?=
CONFIRM ?=
FROM    ?=
WAIT    ?= 900
LINTED  := shared services studio tests deploy bench

.PHONY: help install reinstall run stop restart status logs bootstrap migrate check migration \
        reset studio studio-stop test test-unit test-edge bench lint dlq replay-dlq \
        reconcile-counts resync resync-status nginx-compose asyncapi k8s k8s-render lock clean purge

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "  SERVICE=<$(shell echo $(SERVICES) | tr ' ' '|')> narrows run, stop, restart, migrate, logs, dlq."
	@echo "  seed -> here: npm install / prisma generate -> install, check; migrate dev --name x ->"
	@echo "  migration SERVICE=.. NAME=x; migrate deploy -> migrate; migrate reset -> reset SERVICE=..;"
	@echo "  prisma studio -> studio (http://127.0.0.1:5555), studio-stop; reinstall (troubleshooting)."
	@echo "  ARGS=... is passed to pytest (make test ARGS='-k goals -x') and bench (ARGS=http)."

install: ## .venv with the project and test extras, nginx and chromium (apt) if missing (npm install)
	@$(LOCAL) install

reinstall: ## troubleshooting: stop what runs from .venv, remove it, build it again from scratch
	@$(LOCAL) stop
	rm -rf $(VENV)
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

migrate: bootstrap ## migrate deploy: upgrade SERVICE (default: all) to head, under a per-service lock
	@set -e; for svc in $(or $(SERVICE),$(SERVICES)); do \
		echo "$$svc: migrate"; $(PY) -m shared.migrate $$svc upgrade head; \
	done

check: install ## prisma generate's check: models and migrations agree (alembic check, every service)
	@$(PY) -m shared.migrate check

migration: bootstrap ## migrate dev: SERVICE=goals NAME=add_goal_notes autogenerates, prints SQL, applies
	@test -n "$(SERVICE)" -a -n "$(NAME)" || \
		{ echo "usage: make migration SERVICE=<$(SERVICES)> NAME=<snake_case_name>" >&2; exit 2; }
	@$(PY) -m shared.migrate $(SERVICE) new $(NAME)

reset: install ## migrate reset: drop SERVICE's schema, reapply its migrations (ENV=development or CONFIRM=1)
	@test -n "$(SERVICE)" || { echo "usage: make reset SERVICE=<$(SERVICES)> ENV=development" >&2; exit 2; }
	@ENV=$(ENV) CONFIRM=$(CONFIRM) $(PY) -m shared.migrate $(SERVICE) reset

studio: migrate ## prisma studio: browse every service's tables on http://127.0.0.1:5555 (STUDIO_PORT)
	@$(PY) -m studio start

studio-stop: ## stop the studio (by its pid file, var/run/studio.pid)
	@$(LOCAL) stop-studio

test: install ## run the test suite (it bootstraps its own database growth_diary_test)
	$(VENV)/bin/pytest -q $(ARGS)

test-edge: install ## schemathesis (every check, fixed seed) and the authorization matrix, through a gateway
	$(VENV)/bin/pytest -q tests/edge $(ARGS)

test-unit: install ## only the tests that need neither PostgreSQL nor RabbitMQ (seconds)
	$(VENV)/bin/pytest -q -m unit $(ARGS)

bench: install ## AMQP floor vs our pipeline, HTTP via the gateway, stories (ARGS=http|pipeline|stories: one)
	$(PY) -m bench $(ARGS)

lint: install ## ruff + mypy, squawk over migrations' SQL, shell syntax, generated files, lock, k8s
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/mypy $(LINTED)
	$(PY) -m shared.migration_lint
	bash -n .ci/run
	$(PY) deploy/render_nginx.py compose --check
	$(PY) -m shared.asyncapi --check
	$(PY) deploy/lock.py --check
	$(PY) deploy/k8s/validate.py

asyncapi: install ## write docs/asyncapi.json from the event catalogue (ARGS=--release: also the released contract)
	$(PY) -m shared.asyncapi $(ARGS)

k8s: install ## validate deploy/k8s (every overlay, strict, Kubernetes 1.34) and docker-compose.yml
	$(PY) deploy/k8s/validate.py

k8s-render: ## regenerate deploy/k8s/components/ from deploy/k8s/templates/
	python3 deploy/k8s/render.py

lock: install ## recompile requirements.lock (the images' exact packages) from pyproject.toml
	$(PY) deploy/lock.py

dlq: install ## list SERVICE's dead-lettered events
	@test -n "$(SERVICE)" || { echo "usage: make dlq SERVICE=<$(SERVICES)>" >&2; exit 2; }
	$(PY) -m shared.dlq $(SERVICE) list

replay-dlq: install ## move SERVICE's dead-lettered events back to its queue
	@test -n "$(SERVICE)" || { echo "usage: make replay-dlq SERVICE=<$(SERVICES)>" >&2; exit 2; }
	$(PY) -m shared.dlq $(SERVICE) replay

reconcile-counts: install ## recompute SERVICE's counters from its rows, report the drift fixed (diary)
	@test "$(SERVICE)" = diary || { echo "usage: make reconcile-counts SERVICE=diary" >&2; exit 2; }
	$(PY) -m services.$(SERVICE).reconcile

resync: install ## rebuild SERVICE's read model of FROM's data (stories: goals|diary|auth; diary: auth)
	@test -n "$(SERVICE)" -a -n "$(FROM)" || \
		{ echo "usage: make resync SERVICE=<stories|diary> FROM=<goals|diary|auth> [WAIT=900]" >&2; exit 2; }
	$(PY) -m shared.resync request --service $(SERVICE) --from $(FROM) --wait $(WAIT)

resync-status: install ## the resyncs SERVICE asked for: when, from whom, finished or not, counts
	@test -n "$(SERVICE)" || { echo "usage: make resync-status SERVICE=<stories|diary>" >&2; exit 2; }
	$(PY) -m shared.resync status --service $(SERVICE)

nginx-compose: ## regenerate deploy/nginx.compose.conf from deploy/nginx.conf.template
	python3 deploy/render_nginx.py compose

clean: ## stop everything, remove var/ (logs, pids, keys, mail) and tool caches
	@$(LOCAL) stop
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	@echo "left: .venv, the database $${DATABASE_NAME:-growth_diary} with its roles, and the" \
	      "queues of namespace $${EVENT_NAMESPACE:-growth} (make purge removes those)"

purge: ## clean, then drop this copy's database, its roles and its queues (CONFIRM=1 to skip the question)
	@if [ "$(CONFIRM)" != 1 ]; then \
		read -r -p "drop database $${DATABASE_NAME:-growth_diary}, its roles and its queues? [y/N] " answer; \
		case "$$answer" in y|Y|yes) ;; *) echo "nothing dropped"; exit 1;; esac; \
	fi
	@$(MAKE) --no-print-directory clean
	@$(PY) -m shared.bootstrap --purge
	@$(PY) -m shared.bus purge
