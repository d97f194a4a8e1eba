"""A resync of 100,000 goals (BENCH_RESYNC_GOALS to scale it): stories asks goals for its
state (shared.resync) and we time, from the request's commit, goals' answer (its last batch
of snapshots in its outbox) and stories' completion (every snapshot applied, the completion
handled), with real goals and stories workers, in a database and bus namespace of their own.

The goals are seeded with one set-based INSERT (setup, not the subject); stories' read model
starts empty, so every snapshot is an insert. Target: the resync finishes (within
`TIMEOUT_S`) with every goal in stories' read model; the rate is reported, not judged.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from bench.pipeline import start_worker, stop_worker

ROOT = Path(__file__).resolve().parent.parent
# BENCH_DATABASE_NAME names it (a suffix is added): dropped and made anew at start.
DATABASE = os.environ.get("BENCH_DATABASE_NAME", "growth_diary_bench") + "_resync"
NAMESPACE = f"benchresync{os.getpid()}"
GOALS = int(os.environ.get("BENCH_RESYNC_GOALS", "100000"))
USERS = 1000
TIMEOUT_S = 900.0

_SEED = """
    INSERT INTO goals.goals (id, user_id, title, period, status, start_date, deadline,
                             completed_at, version)
    SELECT md5('goal' || g), 'u' || lpad((g %% %(users)s)::text, 24, '0'), 'Goal ' || g,
           'WEEKLY', CASE WHEN g %% 3 = 0 THEN 'COMPLETED' ELSE 'ACTIVE' END::goals.goal_status,
           now(), now() + interval '7 days',
           CASE WHEN g %% 3 = 0 THEN now() END, 1 + g %% 4
    FROM generate_series(1, %(goals)s) AS g"""


def _admin_url() -> str:
    from shared.config import env

    url = make_url(env("DATABASE_ADMIN_URL", "postgresql://postgres@localhost:5432/postgres"))
    return url.set(drivername="postgresql", database=DATABASE).render_as_string(
        hide_password=False)


def _prepare() -> None:
    os.environ.update(DATABASE_NAME=DATABASE, EVENT_NAMESPACE=NAMESPACE, LOG_LEVEL="WARNING",
                      # health on any free port: never a running copy's
                      GOALS_WORKER_PORT="0", STORIES_WORKER_PORT="0")
    from alembic import command

    from shared.bootstrap import bootstrap
    from shared.config import env
    from shared.migrate import alembic_config

    bootstrap(env("DATABASE_ADMIN_URL", "postgresql://postgres@localhost:5432/postgres"),
              DATABASE, drop=True)
    for service in ("goals", "stories"):
        command.upgrade(alembic_config(service), "head")
    with psycopg.connect(_admin_url(), autocommit=True) as admin:
        admin.execute(_SEED, {"users": USERS, "goals": GOALS})
        admin.execute("ANALYZE goals.goals")


def _wait_declared(queue: str, timeout: float = 60.0) -> None:
    from kombu import Connection

    from shared.config import env

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with Connection(env("AMQP_URL", "amqp://guest:guest@localhost:5672//")) as c:
                c.channel().queue_declare(queue, passive=True)
            return
        except Exception:  # noqa: BLE001 - not declared yet
            time.sleep(0.1)
    raise RuntimeError(f"{queue} not declared: is the worker up?")


def _completed(conn: psycopg.Connection[Any], schema: str, request_id: str) -> float | None:
    row = conn.execute(f"SELECT extract(epoch FROM completed_at) FROM {schema}.resync "  # noqa: S608
                       "WHERE request_id = %s", (request_id,)).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def measure_resync() -> dict[str, Any]:
    _prepare()
    from shared import bus, resync
    from shared.config import SERVICES, Settings
    from shared.db import Database

    names = bus.Names(NAMESPACE)
    workers = [start_worker(service, f"bench-resync-{service}-worker.log")
               for service in ("stories", "goals")]
    stories = Database(Settings.from_env("stories").database_url, "stories", pool_size=1)
    try:
        _wait_declared(names.dead_queue("stories"))
        _wait_declared(names.dead_queue("goals"))
        load_before = os.getloadavg()[0]
        started = time.time()
        request_id = resync.request(stories, asker="stories", producer="goals")
        answered = applied = None
        with psycopg.connect(_admin_url(), autocommit=True) as conn:
            while applied is None and time.time() - started < TIMEOUT_S:
                time.sleep(0.2)
                answered = answered or _completed(conn, "goals", request_id)
                applied = _completed(conn, "stories", request_id)
            in_model = conn.execute("SELECT count(*) FROM stories.goal_views").fetchone()
        finished = time.time()
        return {
            "goals": GOALS, "completed": applied is not None,
            "in_read_model": int(in_model[0]) if in_model else 0,
            "answered_s": (answered - started) if answered else None,
            "applied_s": finished - started if applied else None,
            "goals_per_s": GOALS / (finished - started) if applied else 0.0,
            "load_1m_before": load_before, "load_1m_after": os.getloadavg()[0],
            "cpus": os.cpu_count(),
        }
    finally:
        for proc in workers:
            stop_worker(proc)
        stories.dispose()
        settings = Settings.from_env("stories")
        bus.delete_namespace(settings.amqp_url, names, SERVICES, settings.retry_delays_ms)


def report(result: dict[str, Any]) -> bool:
    ok = bool(result["completed"]) and result["in_read_model"] == result["goals"]
    if result["completed"]:
        print(f"resync of {result['goals']:,} goals: answered by goals in "
              f"{result['answered_s']:.1f} s, applied by stories in {result['applied_s']:.1f} s"
              f" -> {result['goals_per_s']:.0f} goals/s  ({result['in_read_model']:,} in the "
              f"read model; load {result['load_1m_before']:.1f} -> "
              f"{result['load_1m_after']:.1f} on {result['cpus']} CPUs)")
    else:
        print(f"resync of {result['goals']:,} goals: not completed in {TIMEOUT_S:.0f} s "
              f"({result['in_read_model']:,} in the read model)")
    print(f"target: completed with every goal in the read model: {'met' if ok else 'MISSED'}")
    return ok
