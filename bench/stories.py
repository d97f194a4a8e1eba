"""Stories under load, through the real gateway (bench/http.py's Stack: nginx in front of
auth's, goals' and stories' gunicorn) with real goals and stories workers, in a database and
bus namespace of their own.

  template:  POST /stories/generate at a steady 10/s (template generator); request sent ->
             story READY committed (a bench-only NOTIFY trigger, nothing polls), p50/p99;
             against the event pipeline's commit-to-applied p99 measured in the same run
             (goal completions committed by goals' use case -> stories' goal view updated),
             idle. Target: generation p99 <= 3 x pipeline p99.
  slow model: an OpenAI-compatible fake that takes 2 s per call, STORY_LLM_CONCURRENCY=20,
             a backlog of stories asked for before each loaded window (20 in flight);
             GET /stories?limit=20 through the gateway (wrk) and the goal pipeline's
             commit-to-applied, each against its idle figure (idle and loaded alternate,
             two rounds). Targets: both p99 <= 2 x idle.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import requests
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from bench import http
from bench.amqp_floor import percentile

ROOT = Path(__file__).resolve().parent.parent
# BENCH_DATABASE_NAME names it (a suffix is added): dropped and made anew at start.
DATABASE = os.environ.get("BENCH_DATABASE_NAME", "growth_diary_bench") + "_stories"
NAMESPACE = f"benchstories{os.getpid()}"
GENERATION_RATE, GENERATIONS = 10.0, 200
GOAL_RATE, GOAL_EVENTS = 20.0, 160
MODEL_DELAY_S, IN_FLIGHT = 2.0, 20
BACKLOG = 450  # 45 s of work at 20 in flight: asking (~15 s on a busy machine) + the window
TARGETS = {"generation p99 / pipeline p99": 3.0, "GET /stories p99 loaded / idle": 2.0,
           "pipeline p99 loaded / idle": 2.0}


class SlowModel:
    """Chat completions that take `delay` seconds each; counts calls in flight."""

    def __init__(self, delay: float) -> None:
        model = self
        self.in_flight = 0
        self.peak = 0
        self.completed = 0
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with model._lock:
                    model.in_flight += 1
                    model.peak = max(model.peak, model.in_flight)
                time.sleep(delay)
                body = json.dumps({"choices": [{"index": 0, "finish_reason": "stop", "message": {
                    "role": "assistant", "content": "A story from a slow model."}}]}).encode()
                with model._lock:
                    model.in_flight -= 1
                    model.completed += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sampled(self, seconds_between: float = 0.02) -> tuple[threading.Event, list[int]]:
        """Calls in flight, sampled until the returned event is set."""
        done, samples = threading.Event(), []

        def sample() -> None:
            while not done.wait(seconds_between):
                samples.append(self.in_flight)

        threading.Thread(target=sample, daemon=True).start()
        return done, samples

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Bench:
    def __init__(self, root: Path) -> None:
        self.stack = http.Stack(root, http.ensure_binary("nginx", "nginx-light"),
                                services=("auth", "goals", "stories"), database=DATABASE,
                                namespace=NAMESPACE, log_prefix="bench-stories")
        self.stack.env.update(STORIES_DAILY_LIMIT="1000000", LOG_LEVEL="WARNING")
        # The workers' health servers on free ports: a dev system running on this machine
        # holds the default ones (a worker whose port is taken exits at start).
        self.stack.env.update({f"{svc.upper()}_WORKER_PORT": str(http.free_port())
                               for svc in ("goals", "stories")})
        self.env = self.stack.env
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.token = ""
        self.session = requests.Session()
        self.user_id = ""
        self.goals: list[tuple[str, str]] = []
        self.next_day = 1

    # -- set-up ----------------------------------------------------------------------------

    def start(self) -> None:
        self.stack.start()
        for key in ("DATABASE_NAME", "EVENT_NAMESPACE"):  # this process's own use cases
            os.environ[key] = self.env[key]
        with psycopg.connect(self.admin_url(), autocommit=True) as admin:
            for name, column in (("bench_ready", "id"), ("bench_goal", "goal_id")):
                admin.execute(f"""
                    CREATE FUNCTION stories.{name}() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN PERFORM pg_notify('{name}', NEW.{column}); RETURN NULL; END $$""")
            admin.execute("""
                CREATE TRIGGER bench_ready AFTER UPDATE ON stories.stories FOR EACH ROW
                WHEN (NEW.status = 'READY') EXECUTE FUNCTION stories.bench_ready()""")
            admin.execute("""
                CREATE TRIGGER bench_goal AFTER INSERT OR UPDATE ON stories.goal_views
                FOR EACH ROW EXECUTE FUNCTION stories.bench_goal()""")
        self._member()
        self.start_worker("goals")

    def admin_url(self) -> str:
        from shared.config import env

        url = make_url(env("DATABASE_ADMIN_URL", "postgresql://postgres@localhost:5432/postgres"))
        return url.set(drivername="postgresql", database=DATABASE).render_as_string(
            hide_password=False)

    def _member(self) -> None:
        email, password = f"bench-{os.getpid()}@example.com", "a bench passphrase 1234"
        url = self.stack.url
        assert requests.post(f"{url}/auth/register", json={
            "email": email, "password": password, "name": "Bench"}, timeout=10).ok
        login = requests.post(f"{url}/auth/login", json={"email": email, "password": password},
                              timeout=10).json()
        self.token = login["accessToken"]
        self.session.headers["Authorization"] = f"Bearer {self.token}"
        self.user_id = requests.get(f"{url}/auth/me", headers=self.session.headers,
                                    timeout=10).json()["id"]
        from services.goals.models import Goal, GoalPeriod
        from shared.config import Settings
        from shared.db import Database, utcnow
        from shared.ids import new_id

        now = utcnow()
        self.goals = [(self.user_id, new_id()) for _ in range(8 * GOAL_EVENTS)]
        db = Database(Settings.from_env("goals").database_url, "goals")
        with db.sessions.begin() as session:
            session.execute(insert(Goal), [
                {"id": gid, "user_id": uid, "title": "bench", "period": GoalPeriod.DAILY,
                 "start_date": now, "deadline": now} for uid, gid in self.goals])
        db.dispose()

    def start_worker(self, service: str, **env: str) -> None:
        self.stop_worker(service)
        log = open(ROOT / "var" / "log" / f"bench-stories-{service}-worker.log", "ab")  # noqa: SIM115
        self.workers[service] = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}.worker"], env={**self.env, **env},
            cwd=ROOT, stdout=log, stderr=log)
        log.close()
        if service == "stories":
            self._wait_queue(f"{NAMESPACE}.stories.jobs")
            self._wait_queue(f"{NAMESPACE}.stories.dead")

    def _wait_queue(self, queue: str, timeout: float = 30.0) -> None:
        from kombu import Connection

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with Connection(self.env.get("AMQP_URL", "amqp://guest:guest@localhost:5672//")
                                ) as conn:
                    conn.channel().queue_declare(queue, passive=True)
                return
            except Exception:  # noqa: BLE001 - not declared yet
                time.sleep(0.1)
        raise RuntimeError(f"{queue} never declared")

    def stop_worker(self, service: str) -> None:
        proc = self.workers.pop(service, None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def stop(self) -> None:
        for service in list(self.workers):
            self.stop_worker(service)
        self.stack.stop()
        from shared import bus
        from shared.config import SERVICES, Settings

        settings = Settings.from_env("stories")
        bus.delete_namespace(settings.amqp_url, bus.Names(NAMESPACE), SERVICES,
                             settings.retry_delays_ms)

    # -- measurements ----------------------------------------------------------------------

    def period(self) -> str:
        """A day not asked for yet (days back from yesterday)."""
        day = datetime.now(UTC).date() - timedelta(days=self.next_day)
        self.next_day += 1
        return day.isoformat()

    def ask(self) -> str:
        answer = self.session.post(f"{self.stack.url}/stories/generate",
                                   json={"period": self.period()}, timeout=10)
        if answer.status_code != 202:
            raise RuntimeError(f"POST /stories/generate: {answer.status_code} {answer.text}")
        return str(answer.json()["id"])

    def settled(self, model: SlowModel, timeout: float = 120.0) -> None:
        """No story pending and no model call in flight: the idle condition."""
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT count(*) FROM stories.stories WHERE status = 'PENDING'").fetchone()
                if row and row[0] == 0 and model.in_flight == 0:
                    return
                time.sleep(0.2)
        raise RuntimeError("stories still pending after the backlog")

    def pipeline(self, count: int, rate: float = GOAL_RATE) -> dict[str, float]:
        """Goal completions committed at `rate`; each timed to stories' goal view."""
        from services.goals.usecases import complete_goal
        from shared.config import Settings
        from shared.db import Database, UnitOfWork

        db = Database(Settings.from_env("goals").database_url, "goals")
        goals, self.goals = self.goals[:count], self.goals[count:]
        latencies: list[float] = []
        with psycopg.connect(self.admin_url(), autocommit=True) as listener:
            listener.execute("LISTEN bench_goal")
            start = time.perf_counter()
            for i, (uid, gid) in enumerate(goals):
                slot = start + i / rate
                while (now := time.perf_counter()) < slot:
                    time.sleep(min(slot - now, 0.002))
                complete_goal(UnitOfWork(db, source="/bench"), user_id=uid, goal_id=gid)
                committed = time.perf_counter()
                seen = None
                for note in listener.notifies(timeout=20):
                    if note.payload == gid:
                        seen = time.perf_counter()
                        break
                if seen is None:
                    raise RuntimeError(f"goal {gid} not applied in stories within 20 s")
                latencies.append((seen - committed) * 1000)
        db.dispose()
        return {"count": count, "rate": rate, "p50_ms": percentile(latencies, 50),
                "p99_ms": percentile(latencies, 99)}

    def generations(self, count: int, rate: float) -> dict[str, float]:
        """POSTs at `rate`; request sent -> READY committed, by the bench trigger."""
        sent: dict[str, float] = {}
        answered: list[float] = []
        ready: dict[str, float] = {}
        done = threading.Event()
        with psycopg.connect(self.admin_url(), autocommit=True) as listener:
            listener.execute("LISTEN bench_ready")

            def listen() -> None:
                while not done.is_set():
                    for note in listener.notifies(timeout=0.5):
                        ready.setdefault(note.payload, time.perf_counter())

            thread = threading.Thread(target=listen)
            thread.start()
            try:
                start = time.perf_counter()
                for i in range(count):
                    slot = start + i / rate
                    while (now := time.perf_counter()) < slot:
                        time.sleep(min(slot - now, 0.002))
                    before = time.perf_counter()
                    sent[self.ask()] = before
                    answered.append((time.perf_counter() - before) * 1000)
                deadline = time.monotonic() + 60
                while not set(sent) <= set(ready) and time.monotonic() < deadline:
                    time.sleep(0.05)
            finally:
                done.set()
                thread.join(5)
        missing = set(sent) - set(ready)
        if missing:
            raise RuntimeError(f"{len(missing)} stories not READY within 60 s")
        latencies = [(ready[i] - sent[i]) * 1000 for i in sent]
        return {"count": count, "rate": rate, "p50_ms": percentile(latencies, 50),
                "p99_ms": percentile(latencies, 99),
                "post_p50_ms": percentile(answered, 50), "post_p99_ms": percentile(answered, 99)}


def _mean_p99(runs: list[dict[str, float]]) -> float:
    return sum(r["p99_ms"] for r in runs) / len(runs)


def measure_stories(rounds: int = 2) -> dict[str, Any]:
    """Idle and loaded measurements alternate (`rounds` of each), so a machine shared with
    other work weighs on both alike; a ratio compares the mean p99 of each condition."""
    busy = http._cpu_busy()  # the machine is shared: how busy it was before we started
    (ROOT / "var" / "log").mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bench-stories-"))
    bench = Bench(root)
    model = SlowModel(MODEL_DELAY_S)
    try:
        bench.start()
        bench.start_worker("stories", STORY_GENERATOR="template")
        bench.pipeline(20)  # warm-up: connections, prepared statements
        bench.generations(20, GENERATION_RATE)
        pipeline_idle = [bench.pipeline(GOAL_EVENTS)]
        template = bench.generations(GENERATIONS, GENERATION_RATE)
        pipeline_idle.append(bench.pipeline(GOAL_EVENTS))

        wrk = http.Wrk(http.ensure_binary("wrk", "wrk"), root, bench.stack.url, bench.token)
        duration = http.BASE_ENV.get("BENCH_HTTP_DURATION") or "8s"
        bench.start_worker("stories", STORY_GENERATOR="openai", STORY_LLM_BASE_URL=model.url,
                           STORY_LLM_CONCURRENCY=str(IN_FLIGHT), STORY_LLM_MODEL="slow")
        wrk.run("/stories?limit=20", True, wrk.warmup)
        list_idle, list_loaded, goals_idle, goals_loaded = [], [], [], []
        in_flight: list[int] = []  # sampled through the loaded windows
        fed = 0  # stories asked for as backlogs
        for _ in range(rounds):
            bench.settled(model)
            list_idle.append(wrk.run("/stories?limit=20", True, duration))
            goals_idle.append(bench.pipeline(GOAL_EVENTS))
            # A backlog asked for before the window (so its requests are not measured), large
            # enough to keep 20 in flight through it whatever the asking took.
            for _ in range(BACKLOG):
                bench.ask()
            fed += BACKLOG
            deadline = time.monotonic() + 15
            while model.in_flight < IN_FLIGHT and time.monotonic() < deadline:
                time.sleep(0.05)
            done, samples = model.sampled()
            list_loaded.append(wrk.run("/stories?limit=20", True, duration))
            goals_loaded.append(bench.pipeline(GOAL_EVENTS))
            done.set()
            in_flight += samples
        bench.settled(model)
        pipeline_p99 = _mean_p99(pipeline_idle)
        ratios = {
            "generation p99 / pipeline p99": template["p99_ms"] / pipeline_p99,
            "GET /stories p99 loaded / idle": _mean_p99(list_loaded) / _mean_p99(list_idle),
            "pipeline p99 loaded / idle": _mean_p99(goals_loaded) / _mean_p99(goals_idle),
        }
        return {"template_generation": template, "pipeline_idle": pipeline_idle,
                "list_idle": list_idle, "list_loaded": list_loaded,
                "pipeline_slow_idle": goals_idle, "pipeline_slow_loaded": goals_loaded,
                "ratios": ratios,
                "model": {"delay_s": MODEL_DELAY_S, "concurrency": IN_FLIGHT,
                          "in_flight_mean": sum(in_flight) / max(1, len(in_flight)),
                          "in_flight_min": min(in_flight, default=0), "peak": model.peak,
                          "backlog_asked": fed},
                "wrk": wrk.describe(), "cpu_busy_before": busy}
    finally:
        bench.stop()
        model.close()
        shutil.rmtree(root, ignore_errors=True)


def report(result: dict[str, Any]) -> bool:
    t, m = result["template_generation"], result["model"]

    def p99s(runs: list[dict[str, float]], key: str = "p99_ms") -> str:
        return ", ".join(f"{r[key]:.1f}" for r in runs)

    print(f"\nstories (CPU {result['cpu_busy_before']:.0%} busy, all cores, in the second "
          "before the run)")
    print(f"  template generator at {t['rate']:.0f}/s ({t['count']:.0f} stories): "
          f"request -> READY p50 {t['p50_ms']:.1f} ms, p99 {t['p99_ms']:.1f} ms (of which "
          f"the 202 answer: p50 {t['post_p50_ms']:.1f} ms, p99 {t['post_p99_ms']:.1f} ms)")
    pi = result["pipeline_idle"]
    print(f"  goal events -> stories ({pi[0]['rate']:.0f}/s, before and after): p50 "
          f"{p99s(pi, 'p50_ms')} ms, p99 {p99s(pi)} ms")
    print(f"  slow model: {m['delay_s']:.0f} s/call, {m['concurrency']} allowed in flight "
          f"(sampled through the loaded windows: mean {m['in_flight_mean']:.1f}, min "
          f"{m['in_flight_min']}, peak {m['peak']}); {result['wrk']}; idle and loaded "
          "alternate, two rounds")
    li, ll = result["list_idle"], result["list_loaded"]
    print(f"  GET /stories?limit=20 p99 idle: {p99s(li)} ms "
          f"({p99s(li, 'rps')} req/s); loaded: {p99s(ll)} ms ({p99s(ll, 'rps')} req/s)")
    gi, gl = result["pipeline_slow_idle"], result["pipeline_slow_loaded"]
    print(f"  goal events -> stories p99 idle: {p99s(gi)} ms; loaded: {p99s(gl)} ms")
    ok = all(r["non_200"] == 0 and r["socket_errors"] == 0 for r in [*li, *ll])
    ok &= m["in_flight_mean"] >= 0.95 * IN_FLIGHT
    if not ok:
        print("  FAILED: non-200 answers, socket errors, or fewer than 19 calls in flight on "
              "average")
    for label, value in result["ratios"].items():
        met = value <= TARGETS[label]
        ok &= met
        print(f"  {label}: {value:.2f}  (target <= {TARGETS[label]:g}){'' if met else '  MISSED'}")
    return ok
