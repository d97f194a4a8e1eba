"""Our event pipeline end to end: goal completions committed through the goals use case,
relayed from goals' outbox, consumed by auth's worker and applied as achievement awards.

Runs real worker processes against a database and bus namespace of its own, so a running
dev system is not disturbed and does not disturb the figures.
  saturation: a backlog of completions is committed while goals' relay is stopped; the relay
              starts and we time first award visible -> last award visible.
  steady:     completions at a fixed rate with both workers running; latency is from the
              use case's commit returning to auth's commit of the award (announced by a
              bench-only NOTIFY trigger, so nothing polls).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from bench.amqp_floor import percentile

ROOT = Path(__file__).resolve().parent.parent
# BENCH_DATABASE_NAME names it: dropped and made anew at start, so never point it at data.
DATABASE = os.environ.get("BENCH_DATABASE_NAME", "growth_diary_bench")
NAMESPACE = f"bench{os.getpid()}"


def _prepare() -> None:
    os.environ.update(DATABASE_NAME=DATABASE, EVENT_NAMESPACE=NAMESPACE, LOG_LEVEL="WARNING")
    from alembic import command

    from shared.bootstrap import bootstrap
    from shared.config import env
    from shared.migrate import alembic_config

    bootstrap(env("DATABASE_ADMIN_URL", "postgresql://postgres@localhost:5432/postgres"),
              DATABASE, drop=True)
    for service in ("auth", "goals"):
        command.upgrade(alembic_config(service), "head")
    # Bench-only: auth's award commits announce themselves, so latency is measured to the
    # moment the award is committed and visible, without polling (which would steal CPU).
    with psycopg.connect(_admin_url(), autocommit=True) as admin:
        admin.execute("""
            CREATE FUNCTION auth.bench_announce() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('bench_applied', NEW.goal_id); RETURN NULL; END $$""")
        admin.execute("""
            CREATE TRIGGER bench_announce AFTER INSERT OR UPDATE ON auth.achievement_awards
            FOR EACH ROW EXECUTE FUNCTION auth.bench_announce()""")


def _admin_url() -> str:
    from shared.config import env

    url = make_url(env("DATABASE_ADMIN_URL", "postgresql://postgres@localhost:5432/postgres"))
    return url.set(drivername="postgresql", database=DATABASE).render_as_string(
        hide_password=False)


def start_worker(service: str, log_name: str | None = None) -> subprocess.Popen[bytes]:
    """A service's worker for a bench, logging to var/log, its health server on a free port
    (a dev system on the machine holds the default ones)."""
    log = open(ROOT / "var" / "log" / (log_name or f"bench-{service}-worker.log"),  # noqa: SIM115
               "ab")
    return subprocess.Popen([sys.executable, "-m", f"services.{service}.worker"],
                            env={**os.environ, f"{service.upper()}_WORKER_PORT": "0"},
                            cwd=ROOT, stdout=log, stderr=log)


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _auth_conn() -> psycopg.Connection[Any]:
    from shared.config import database_url

    url = make_url(database_url("auth"))
    return psycopg.connect(host=url.host, port=url.port, user=url.username,
                           password=url.password, dbname=DATABASE, autocommit=True)


def _seed(users: int, goals_per_user: int) -> list[tuple[str, str]]:
    """Users in auth and ACTIVE goals in goals, written directly: setup, not the subject."""
    from services.goals.models import Goal, GoalPeriod
    from shared.config import Settings
    from shared.db import Database, utcnow
    from shared.ids import new_id

    pairs = [(new_id(), new_id()) for _ in range(users)]
    with _auth_conn() as conn, conn.cursor() as cur:
        cur.executemany("INSERT INTO auth.users (id, email) VALUES (%s, %s)",
                        [(uid, f"{uid}@bench.example") for uid, _ in pairs])
    goals = [(uid, new_id()) for uid, _ in pairs for _ in range(goals_per_user)]
    db = Database(Settings.from_env("goals").database_url, "goals")
    now = utcnow()
    with db.sessions.begin() as session:
        session.execute(insert(Goal), [
            {"id": gid, "user_id": uid, "title": "bench", "period": GoalPeriod.DAILY,
             "start_date": now, "deadline": now} for uid, gid in goals])
    db.dispose()
    return goals


def _wait_ready(timeout: float = 30.0) -> None:
    """Auth's consumer has declared its queue and goals' relay can reach the broker."""
    from kombu import Connection

    from shared import bus
    from shared.config import env

    names = bus.Names(NAMESPACE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with Connection(env("AMQP_URL", "amqp://guest:guest@localhost:5672//")) as c:
                c.channel().queue_declare(names.dead_queue("auth"), passive=True)
            return
        except Exception:  # noqa: BLE001 - not declared yet
            time.sleep(0.05)
    raise RuntimeError("auth worker did not become ready")


def _awarded(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM auth.achievement_awards WHERE awarded").fetchone()
    return int(row[0]) if row else 0


def measure_pipeline(*, backlog: int = 3000, steady_rate: float = 50.0,
                     steady_count: int = 500,
                     extra_env: dict[str, str] | None = None) -> dict[str, dict[str, float]]:
    """`extra_env`: what the workers get besides (bench/tracing.py turns tracing on)."""
    _prepare()
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        os.environ.pop(name, None)  # off unless asked, whatever the last run set
    os.environ.update(extra_env or {})
    from services.goals.usecases import complete_goal
    from shared.config import Settings
    from shared.db import Database, UnitOfWork

    goals = _seed(users=100, goals_per_user=(backlog + steady_count) // 100 + 1)
    db = Database(Settings.from_env("goals").database_url, "goals")
    auth_worker = start_worker("auth")
    goals_worker: subprocess.Popen[bytes] | None = None
    try:
        _wait_ready()
        # Saturation: commit a backlog while the relay is down, then let it go.
        started = time.perf_counter()
        for uid, gid in goals[:backlog]:
            complete_goal(UnitOfWork(db, source="/bench"), user_id=uid, goal_id=gid)
        commit_rate = backlog / (time.perf_counter() - started)
        conn = _auth_conn()
        goals_worker = start_worker("goals")
        while (first_seen := _awarded(conn)) == 0:
            time.sleep(0.001)
        t_first = time.perf_counter()
        while (done := _awarded(conn)) < backlog:
            time.sleep(0.005)
        elapsed = time.perf_counter() - t_first
        saturation = {"msgs_per_s": (done - first_seen) / elapsed, "count": backlog,
                      "use_case_commits_per_s": commit_rate}

        # Steady: one completion every 1/rate seconds; wait for each to be applied.
        latencies: list[float] = []
        listener = psycopg.connect(_admin_url(), autocommit=True)
        listener.execute("LISTEN bench_applied")
        start = time.perf_counter()
        for i, (uid, gid) in enumerate(goals[backlog:backlog + steady_count]):
            slot = start + i / steady_rate
            while (now := time.perf_counter()) < slot:
                time.sleep(min(slot - now, 0.002))
            complete_goal(UnitOfWork(db, source="/bench"), user_id=uid, goal_id=gid)
            committed = time.perf_counter()
            seen = None
            for note in listener.notifies(timeout=10):
                if note.payload == gid:
                    seen = time.perf_counter()
                    break
            if seen is None:
                raise RuntimeError(f"award for {gid} not applied within 10 s")
            latencies.append((seen - committed) * 1000)
        listener.close()
        steady = {"rate": steady_rate, "count": steady_count,
                  "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99)}
        conn.close()
        return {"saturation": saturation, "steady": steady}
    finally:
        for proc in (goals_worker, auth_worker):
            if proc is not None:
                stop_worker(proc)
        db.dispose()
        _cleanup_bus()


def _cleanup_bus() -> None:
    from shared import bus
    from shared.config import SERVICES, Settings

    settings = Settings.from_env("auth")
    bus.delete_namespace(settings.amqp_url, bus.Names(NAMESPACE), SERVICES,
                         settings.retry_delays_ms)
