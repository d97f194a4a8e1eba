"""Stories under load, through the real gateway (bench/http.py's Stack: nginx in front of
auth's, goals' and stories' gunicorn) with real goals and stories workers, in a database and
bus namespace of their own.

  template:  three rounds, each a window of the event pipeline's commit-to-applied (200 goal
             completions committed by goals' use case at 20/s -> stories' goal view updated)
             and a window of POST /stories/generate at a steady 10/s (200 stories, template
             generator; request sent -> story READY committed, by bench-only NOTIFY
             triggers: nothing polls), in alternating order. Per round: generation p99 /
             pipeline p99. Target: the median of the rounds' ratios <= 3.
  slow model: an OpenAI-compatible fake taking 2 s per call (bench/slow_model.py, a process
             of its own, as the external server it stands in for), STORY_LLM_CONCURRENCY=20.
             Three rounds, each an idle and a loaded condition in alternating order; in each,
             GET /stories?limit=20 through the gateway (wrk, 5 s) then the goal pipeline (200
             at 20/s). Loaded: a backlog asked for before the window (so its requests are not
             measured) keeps 20 calls in flight through it (sampled in the model's process);
             what is left is deleted after. Per round: loaded p99 / idle p99 of each. Targets:
             the median of the rounds' ratios <= 2.

Every round is printed, with each window's CPU: ours, the broker's and database's, and other
work on the (shared) machine; the bench says so when other work took more than 10%.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
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
# Each figure is measured in rounds (idle and loaded, or pipeline and generations, in
# alternating order), a ratio is taken per round, and the median of the rounds' ratios is
# what meets or misses its target. Per window at least 200 samples: a p99 is the 3rd worst.
# BENCH_STORIES_TEMPLATE_ROUNDS / BENCH_STORIES_SLOW_ROUNDS: more rounds, or 0 to leave
# one half out (its ratio is then not checked).
TEMPLATE_ROUNDS = int(os.environ.get("BENCH_STORIES_TEMPLATE_ROUNDS") or "3")
SLOW_ROUNDS = int(os.environ.get("BENCH_STORIES_SLOW_ROUNDS") or "3")
GENERATION_RATE, GENERATIONS = 10.0, 200  # per round: 20 s
GOAL_RATE, GOAL_EVENTS = 20.0, 200  # per window: 10 s
LIST_WINDOW = "5s"  # wrk per window: a few thousand requests
MODEL_DELAY_S, IN_FLIGHT = 2.0, 20
# Asked for before each loaded window (so its requests are not measured): 10 stories/s are
# written at 20 in flight, through the asking (~5 s, four at a time) and the window (~16 s).
BACKLOG, ASKERS = 360, 4
CONTENDED = 0.10  # other work's share of the machine in a window above which we say so
GOALS_NEEDED = 20 + (TEMPLATE_ROUNDS + 2 * SLOW_ROUNDS) * GOAL_EVENTS
TARGETS = {"generation p99 / pipeline p99": 3.0, "GET /stories p99 loaded / idle": 2.0,
           "pipeline p99 loaded / idle": 2.0}


class SlowModel:
    """bench/slow_model.py in a process of its own (it stands in for an external server)."""

    def __init__(self, delay: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.slow_model", str(delay)], cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        port = self.process.stdout.readline().decode().strip()
        if not port.isdigit():
            self.close()
            raise RuntimeError("the slow model server did not start")
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/v1"
        self._session = requests.Session()

    def stats(self) -> dict[str, int]:
        answer: dict[str, int] = self._session.get(f"{self.base}/stats", timeout=5).json()
        return answer

    @property
    def in_flight(self) -> int:
        return self.stats()["in_flight"]

    def start_window(self) -> None:
        self._session.post(f"{self.base}/window/start", timeout=5).raise_for_status()

    def stop_window(self) -> dict[str, float]:
        """Calls in flight, sampled every 20 ms in the model's process since start_window."""
        answer: dict[str, float] = self._session.post(f"{self.base}/window/stop",
                                                      timeout=5).json()
        return answer

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


TICKS = os.sysconf("SC_CLK_TCK")


def _ticks(pid: int) -> int:
    """utime + stime of one process, in clock ticks (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)


def _scan(database: str) -> tuple[list[int], list[int]]:
    """PostgreSQL's backends connected to `database` (their title names it); and the shared
    services' processes: RabbitMQ's and PostgreSQL's own (postmaster, WAL writer,
    checkpointer, autovacuum: no client in their title), which serve every user alike."""
    backends, shared = [], []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
                title = (entry / "cmdline").read_bytes() if comm == "postgres" else b""
            except OSError:
                continue
            if comm == "beam.smp":
                shared.append(int(entry.name))
            elif comm == "postgres":
                if f" {database} ".encode() in title:
                    backends.append(int(entry.name))
                elif b"(" not in title and b"[local]" not in title:
                    shared.append(int(entry.name))
    return backends, shared


def _stalled_us(resource: str, kind: str) -> int:
    """Pressure stall time (Linux PSI): microseconds in which `kind` ("some": at least one
    task, "full": every task) waited for `resource` ("io", "cpu"); 0 without PSI."""
    try:
        for line in Path(f"/proc/pressure/{resource}").read_text().splitlines():
            if line.startswith(kind + " "):
                return int(line.rsplit("total=", 1)[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class CpuMeter:
    """Over a window: how busy the machine was (all cores), how much of that was this bench's
    own (this process and its waited-for children such as wrk, the gunicorn processes, nginx,
    the workers, the model, and PostgreSQL's backends for its database), the shared services'
    (RabbitMQ, PostgreSQL's own processes: ours and others' work both), and the rest: other
    work on the shared machine (a backend of ours that exited within the window counts
    there, so it is an upper bound). `stories_worker`: the stories worker's share of a core;
    `io_stalled`: the share of the window in which every task waited on I/O (Linux PSI);
    `steal`: the hypervisor's (other machines' work on our cores)."""

    def __init__(self, bench: Bench, model: SlowModel) -> None:
        self.bench, self.model = bench, model

    def _pids(self) -> tuple[list[int], list[int]]:
        stack = self.bench.stack
        pids = [self.model.process.pid, *(p.pid for p in self.bench.workers.values())]
        for proc in stack.webs.values():
            pids += [proc.pid, *http._children(proc.pid)]
        if stack.nginx_pid is not None:
            pids += [stack.nginx_pid, *http._children(stack.nginx_pid)]
        backends, shared = _scan(DATABASE)
        return pids + backends, shared

    def snapshot(self) -> dict[str, float]:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        own = os.times()
        worker = self.bench.workers.get("stories")
        ours, shared = self._pids()
        return {"total": sum(ticks), "idle": ticks[3] + ticks[4], "steal": ticks[7],
                "ours": sum(_ticks(pid) for pid in ours) + TICKS * (
                    own.user + own.system + own.children_user + own.children_system),
                "shared": sum(_ticks(pid) for pid in shared),
                "worker": _ticks(worker.pid) if worker else 0, "at": time.monotonic(),
                "io_full": _stalled_us("io", "full"), "cpu_some": _stalled_us("cpu", "some")}

    def since(self, start: dict[str, float]) -> dict[str, float]:
        end = self.snapshot()
        seconds = max(1e-3, end["at"] - start["at"])
        total = max(1.0, end["total"] - start["total"])
        busy = total - (end["idle"] - start["idle"])
        ours = min(busy, end["ours"] - start["ours"])
        shared = min(busy - ours, end["shared"] - start["shared"])
        return {"busy": busy / total, "ours": ours / total, "shared": shared / total,
                "others": max(0.0, busy - ours - shared - (end["steal"] - start["steal"]))
                / total,
                "stories_worker": (end["worker"] - start["worker"]) / TICKS / seconds,
                # the share of the window in which every task waited for I/O (commits'
                # fsyncs among them), and in which some task waited for a core
                "io_stalled": (end["io_full"] - start["io_full"]) / 1e6 / seconds,
                # time the hypervisor ran something else on our virtual cores: other
                # machines' work, invisible in the split above (it counts as busy)
                "steal": (end["steal"] - start["steal"]) / total,
                "cpu_waited": (end["cpu_some"] - start["cpu_some"]) / 1e6 / seconds}


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
        self._local = threading.local()  # a session per asking thread

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
        self.goals = [(self.user_id, new_id()) for _ in range(GOALS_NEEDED)]
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

    def ask(self, period: str | None = None) -> str:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers.update(self.session.headers)
        answer = session.post(f"{self.stack.url}/stories/generate",
                              json={"period": period or self.period()}, timeout=10)
        if answer.status_code != 202:
            raise RuntimeError(f"POST /stories/generate: {answer.status_code} {answer.text}")
        return str(answer.json()["id"])

    def ask_backlog(self, count: int) -> float:
        """`count` stories asked for, ASKERS at a time; returns the seconds it took."""
        periods = [self.period() for _ in range(count)]
        start = time.perf_counter()
        with ThreadPoolExecutor(ASKERS) as pool:
            list(pool.map(self.ask, periods))
        return time.perf_counter() - start

    def pending(self) -> int:
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM stories.stories WHERE status = 'PENDING'").fetchone()
        return int(row[0]) if row else 0

    def drop_backlog(self) -> int:
        """The stories still pending after a loaded window, deleted (bench housekeeping: their
        jobs then find nothing to write and call no model), so the next window starts idle
        without waiting for the rest of the backlog to be written."""
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            return conn.execute(
                "DELETE FROM stories.stories WHERE status = 'PENDING'").rowcount

    def _jobs_waiting(self) -> int:
        from kombu import Connection

        with Connection(self.env.get("AMQP_URL", "amqp://guest:guest@localhost:5672//")) as conn:
            _, waiting, _ = conn.channel().queue_declare(f"{NAMESPACE}.stories.jobs",
                                                         passive=True)
        return int(waiting)

    def settled(self, model: SlowModel, timeout: float = 120.0) -> None:
        """No story pending, no job waiting and no model call in flight: the idle condition
        (then a second's quiet for the last stories' events to be relayed and consumed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending() == 0 and self._jobs_waiting() == 0 and model.in_flight == 0:
                time.sleep(1.0)
                return
            time.sleep(0.2)
        raise RuntimeError("stories still pending after the backlog")

    def pipeline(self, count: int = GOAL_EVENTS, rate: float = GOAL_RATE) -> dict[str, float]:
        """Goal completions committed at `rate`; each timed to stories' goal view."""
        from services.goals.usecases import complete_goal
        from shared.config import Settings
        from shared.db import Database, UnitOfWork

        db = Database(Settings.from_env("goals").database_url, "goals")
        goals, self.goals = self.goals[:count], self.goals[count:]
        if len(goals) < count:
            raise RuntimeError("the bench ran out of goals to complete")
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

    def generations(self, count: int = GENERATIONS,
                    rate: float = GENERATION_RATE) -> dict[str, float]:
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


def _median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _machine() -> dict[str, float]:
    """How busy the shared machine is: CPU busy over one second, all cores, and the load
    average (the bench's own processes count in both once they run)."""
    load1, load5, _ = os.getloadavg()
    return {"cpu_busy": http._cpu_busy(), "load1": load1, "load5": load5}


def measure_stories() -> dict[str, Any]:
    """Rounds in alternating order (ABBA...), a ratio per round, the median ratio checked."""
    before = _machine()  # the machine is shared: how busy it was before we started
    started = time.monotonic()
    (ROOT / "var" / "log").mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bench-stories-"))
    bench = Bench(root)
    model = SlowModel(MODEL_DELAY_S)
    meter = CpuMeter(bench, model)

    def on_sigterm(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # through the finally below: nothing left running

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        bench.start()
        bench.start_worker("stories", STORY_GENERATOR="template")
        bench.pipeline(20)  # warm-up: connections, prepared statements
        bench.generations(20)

        template_rounds: list[dict[str, Any]] = []
        for i in range(TEMPLATE_ROUNDS):
            figures: dict[str, Any] = {}
            for what in (("pipeline", "generation") if i % 2 == 0
                         else ("generation", "pipeline")):
                time.sleep(1.0)  # the last window's events relayed and consumed
                start = meter.snapshot()
                figures[what] = bench.pipeline() if what == "pipeline" else bench.generations()
                figures[what]["cpu"] = meter.since(start)
            figures["ratio"] = figures["generation"]["p99_ms"] / figures["pipeline"]["p99_ms"]
            template_rounds.append(figures)

        wrk = http.Wrk(http.ensure_binary("wrk", "wrk"), root, bench.stack.url, bench.token)
        bench.start_worker("stories", STORY_GENERATOR="openai", STORY_LLM_BASE_URL=model.url,
                           STORY_LLM_CONCURRENCY=str(IN_FLIGHT), STORY_LLM_MODEL="slow")
        wrk.run("/stories?limit=20", True, wrk.warmup)
        slow_rounds: list[dict[str, Any]] = []
        for i in range(SLOW_ROUNDS):
            figures = {}
            for condition in ("idle", "loaded") if i % 2 == 0 else ("loaded", "idle"):
                bench.settled(model)
                window: dict[str, Any] = {}
                if condition == "loaded":
                    window["asked"] = BACKLOG
                    window["ask_s"] = bench.ask_backlog(BACKLOG)
                    deadline = time.monotonic() + 15
                    while model.in_flight < IN_FLIGHT and time.monotonic() < deadline:
                        time.sleep(0.05)
                    model.start_window()
                start = meter.snapshot()
                window["list"] = wrk.run("/stories?limit=20", True, LIST_WINDOW)
                window["list"]["cpu"] = meter.since(start)
                start = meter.snapshot()
                window["pipeline"] = bench.pipeline()
                window["pipeline"]["cpu"] = meter.since(start)
                if condition == "loaded":
                    window["in_flight"] = model.stop_window()
                    window["left_pending"] = bench.drop_backlog()
                figures[condition] = window
            figures["list_ratio"] = (figures["loaded"]["list"]["p99_ms"]
                                     / figures["idle"]["list"]["p99_ms"])
            figures["pipeline_ratio"] = (figures["loaded"]["pipeline"]["p99_ms"]
                                         / figures["idle"]["pipeline"]["p99_ms"])
            slow_rounds.append(figures)
        bench.settled(model)
        ratios = {}
        if template_rounds:
            ratios["generation p99 / pipeline p99"] = _median(
                [r["ratio"] for r in template_rounds])
        if slow_rounds:
            ratios["GET /stories p99 loaded / idle"] = _median(
                [r["list_ratio"] for r in slow_rounds])
            ratios["pipeline p99 loaded / idle"] = _median(
                [r["pipeline_ratio"] for r in slow_rounds])
        return {"template_rounds": template_rounds, "slow_rounds": slow_rounds,
                "ratios": ratios,
                "model": {"delay_s": MODEL_DELAY_S, "concurrency": IN_FLIGHT,
                          "peak": model.stats()["peak"]},
                "wrk": wrk.describe().replace(f"-d{wrk.duration}", f"-d{LIST_WINDOW}"),
                "machine_before": before, "machine_after": _machine(),
                "seconds": time.monotonic() - started}
    finally:
        bench.stop()
        model.close()
        shutil.rmtree(root, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous)


def _cpu(window: dict[str, Any]) -> str:
    cpu = window["cpu"]
    return (f"[CPU {cpu['busy']:.0%}: ours {cpu['ours']:.0%}, broker+db {cpu['shared']:.0%}, "
            f"others {cpu['others']:.0%}, stolen {cpu.get('steal', 0.0):.0%}; I/O stalled "
            f"{cpu['io_stalled']:.0%}]")


def report(result: dict[str, Any]) -> bool:
    m, b, a = result["model"], result["machine_before"], result["machine_after"]
    print(f"\nstories ({result['seconds']:.0f} s; machine before: CPU {b['cpu_busy']:.0%} busy "
          f"(all cores, one second), load {b['load1']:.2f}; after: CPU {a['cpu_busy']:.0%}, "
          f"load {a['load1']:.2f} (load over the run, ours included: {a['load5']:.2f} "
          "5-min average))")
    print(f"  template generator at {GENERATION_RATE:.0f}/s, {GENERATIONS} stories a round; "
          f"goal events -> stories at {GOAL_RATE:.0f}/s, {GOAL_EVENTS} a window:")
    for i, r in enumerate(result["template_rounds"], 1):
        g, p = r["generation"], r["pipeline"]
        print(f"    round {i}: request -> READY p50 {g['p50_ms']:.1f} p99 {g['p99_ms']:.1f} ms "
              f"(the 202: p50 {g['post_p50_ms']:.1f} p99 {g['post_p99_ms']:.1f}) {_cpu(g)}; "
              f"pipeline p50 {p['p50_ms']:.1f} p99 {p['p99_ms']:.1f} ms {_cpu(p)}; ratio "
              f"{r['ratio']:.2f}")
    print(f"  slow model ({m['delay_s']:.0f} s/call, {m['concurrency']} allowed in flight, peak "
          f"{m['peak']}; its own process); GET /stories?limit=20 by {result['wrk']}; goal "
          f"events at {GOAL_RATE:.0f}/s, {GOAL_EVENTS} a window:")
    ok = True
    for i, r in enumerate(result["slow_rounds"], 1):
        idle, loaded = r["idle"], r["loaded"]
        f = loaded["in_flight"]
        order = "idle first" if list(r)[0] == "idle" else "loaded first"
        print(f"    round {i} ({order}): GET /stories p99 idle {idle['list']['p99_ms']:.1f} ms "
              f"({idle['list']['rps']:.0f}/s) {_cpu(idle['list'])} -> loaded "
              f"{loaded['list']['p99_ms']:.1f} ms ({loaded['list']['rps']:.0f}/s) "
              f"{_cpu(loaded['list'])}, ratio {r['list_ratio']:.2f}")
        print(f"      pipeline p50/p99 idle {idle['pipeline']['p50_ms']:.1f}/"
              f"{idle['pipeline']['p99_ms']:.1f} ms {_cpu(idle['pipeline'])} -> loaded "
              f"{loaded['pipeline']['p50_ms']:.1f}/{loaded['pipeline']['p99_ms']:.1f} ms "
              f"{_cpu(loaded['pipeline'])}, ratio {r['pipeline_ratio']:.2f}")
        print(f"      loaded: in flight mean {f['mean']:.1f} min {f['min']} ({f['samples']} "
              f"samples); stories worker {loaded['pipeline']['cpu']['stories_worker']:.0%} of a "
              f"core (idle {idle['pipeline']['cpu']['stories_worker']:.0%}); backlog asked in "
              f"{loaded['ask_s']:.1f} s, {loaded['left_pending']} left")
        ok &= all(w["list"]["non_200"] == 0 and w["list"]["socket_errors"] == 0
                  for w in (idle, loaded))
        ok &= f["mean"] >= 0.95 * IN_FLIGHT and loaded["left_pending"] > 0
    if not ok:
        print("  FAILED: non-200 answers, socket errors, fewer than 19 calls in flight on "
              "average, or a backlog that ran dry")

    def med(values: list[float]) -> str:
        return f"{_median(values):.1f}"

    t, s = result["template_rounds"], result["slow_rounds"]
    print(f"  medians over the rounds: request -> READY p99 "
          f"{med([r['generation']['p99_ms'] for r in t])} ms, pipeline p99 "
          f"{med([r['pipeline']['p99_ms'] for r in t])} ms; GET /stories p99 idle "
          f"{med([r['idle']['list']['p99_ms'] for r in s])}, loaded "
          f"{med([r['loaded']['list']['p99_ms'] for r in s])} ms; pipeline p99 idle "
          f"{med([r['idle']['pipeline']['p99_ms'] for r in s])}, loaded "
          f"{med([r['loaded']['pipeline']['p99_ms'] for r in s])} ms")
    windows = [w for r in t for w in (r["generation"], r["pipeline"])] + [
        w for r in s for c in ("idle", "loaded") for w in (r[c]["list"], r[c]["pipeline"])]
    busiest = max(w["cpu"]["others"] for w in windows)
    if busiest > CONTENDED:
        print(f"  NOTE: other work took up to {busiest:.0%} of the machine in a window (more "
              f"than {CONTENDED:.0%}): these figures measure a shared machine, not the code")
    for label, value in result["ratios"].items():
        met = value <= TARGETS[label]
        ok &= met
        print(f"  {label} (median of the rounds' ratios): {value:.2f}  "
              f"(target <= {TARGETS[label]:g}){'' if met else '  MISSED'}")
    return ok
