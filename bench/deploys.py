"""Deploys under load: the whole system as `make run` starts it, 8 users making about 40
requests a second of mixed reads and writes through the gateway, while each service in turn
is restarted (`make restart SERVICE=x`), deployed (`make run SERVICE=x`) and deployed as a
bad build (a version of its web app that does not import).

For every phase: requests answered, failures (a 5xx or no answer: a 4xx is an answer the
client asked for), p50 and p99 latency, and the runner's exit status (a bad build must exit
non-zero and leave the old version serving). Targets: 0 failures in every phase, p99 under
500 ms, every bad build refused.

Everything is its own: database (BENCH_DATABASE_NAME + `_deploys`), bus namespace, free
ports, var/ in a temporary directory. BENCH_DEPLOY_RATE (40 requests/s), BENCH_DEPLOY_USERS
(8), BENCH_DEPLOY_SETTLE (3 s of load before and after each phase).
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from deploy.local import main as runner
from shared.services import SERVICES

DATABASE = os.environ.get("BENCH_DATABASE_NAME", "growth_diary_bench") + "_deploys"
RATE = float(os.environ.get("BENCH_DEPLOY_RATE", "40"))
USERS = int(os.environ.get("BENCH_DEPLOY_USERS", "8"))
SETTLE_S = float(os.environ.get("BENCH_DEPLOY_SETTLE", "3"))
P99_TARGET_MS = 500.0

# A web app that fails to import, put ahead of the checkout on gunicorn's path: what a
# broken release looks like to the runner.
BROKEN_APP = 'raise ImportError("bench: this build of the {svc} app does not import")\n'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Answer:
    at: float
    status: int  # 0: no answer
    ms: float


@dataclass
class Load:
    """USERS threads, each with its own account and keep-alive session, paced to RATE."""

    base: str
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def user(self, index: int) -> None:
        http = requests.Session()
        email = f"bench-deploy-{os.getpid()}-{index}@example.com"
        password = "correct horse battery staple"
        http.post(f"{self.base}/auth/register", json={"email": email, "password": password,
                                                      "name": f"User {index}"}, timeout=10)
        token = http.post(f"{self.base}/auth/login", json={"email": email, "password": password},
                          timeout=10).json()["accessToken"]
        http.headers["Authorization"] = f"Bearer {token}"
        goal = http.post(f"{self.base}/goals", json={"title": "Ship it", "period": "WEEKLY"},
                         timeout=10).json()["id"]
        rng = random.Random(index)
        interval = USERS / RATE
        next_at = time.monotonic() + rng.random() * interval
        while not self.stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            next_at += interval
            pick = rng.random()
            if pick < 0.35:
                method, path, body = "GET", "/goals?limit=20", None
            elif pick < 0.55:
                method, path, body = "GET", "/auth/me", None
            elif pick < 0.65:
                method, path, body = "POST", "/goals", {"title": "More", "period": "DAILY"}
            elif pick < 0.75:
                method, path, body = "POST", f"/goals/{goal}/" + rng.choice(
                    ["complete", "reopen"]), None
            elif pick < 0.85:
                method, path, body = "GET", "/diary/feed?limit=20", None
            elif pick < 0.95:
                method, path, body = "GET", "/stories", None
            else:
                method, path, body = "POST", "/diary/posts", {"title": "A note",
                                                              "content": "What I learned"}
            self.answers.append(self.call(http, method, path, body))

    def call(self, http: requests.Session, method: str, path: str,
             body: dict[str, Any] | None) -> Answer:
        started = time.monotonic()
        try:
            status = http.request(method, f"{self.base}{path}", json=body, timeout=10).status_code
        except requests.RequestException:
            status = 0
        return Answer(started, status, (time.monotonic() - started) * 1000)

    def start(self) -> None:
        self.threads = [threading.Thread(target=self.user, args=(i,), daemon=True)
                        for i in range(USERS)]
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(15)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(answers: list[Answer]) -> dict[str, Any]:
    failed = [a for a in answers if a.status == 0 or a.status >= 500]
    ms = [a.ms for a in answers]
    return {"requests": len(answers), "failed": len(failed),
            "statuses": sorted({a.status for a in failed}),
            "p50_ms": round(percentile(ms, 50), 1), "p99_ms": round(percentile(ms, 99), 1)}


@contextlib.contextmanager
def system(tmp: Path) -> Iterator[tuple[dict[str, str], Path, str]]:
    gateway = free_port()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_PORT")}
    env.update(DATABASE_NAME=DATABASE, EVENT_NAMESPACE=f"benchdeploy{os.getpid()}",
               GATEWAY_PORT=str(gateway), AUTH_KEYS_DIR=str(tmp / "keys"),
               MAIL_DIR=str(tmp / "mail"), LOG_LEVEL="WARNING", READY_TIMEOUT="60",
               REGISTER_MAX_PER_CLIENT="1000000", GATEWAY_AUTH_RATE="6000r/m",
               GATEWAY_AUTH_BURST="1000")
    for svc in SERVICES:
        env[f"{svc.upper()}_PORT"] = str(free_port())
        env[f"{svc.upper()}_WORKER_PORT"] = str(free_port())
    env["AUTH_JWKS_URL"] = f"http://127.0.0.1:{env['AUTH_PORT']}/auth/.well-known/jwks.json"
    var = tmp / "var"
    from shared.bootstrap import bootstrap
    bootstrap(env.get("DATABASE_ADMIN_URL", "postgresql://postgres@localhost:5432/postgres"),
              DATABASE, drop=True)
    assert runner(["run"], environ=env, var=var) == 0, "the system did not start"
    try:
        yield env, var, f"http://127.0.0.1:{gateway}"
    finally:
        runner(["stop"], environ=env, var=var)


def measure_deploys() -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-deploys-") as tmp_name:
        tmp = Path(tmp_name)
        with system(tmp) as (env, var, base):
            load = Load(base)
            load.start()
            time.sleep(SETTLE_S * 2)
            try:
                for svc in SERVICES:
                    broken = tmp / f"broken-{svc}"
                    (broken / "services" / svc).mkdir(parents=True)
                    (broken / "services" / "__init__.py").touch()
                    (broken / "services" / svc / "__init__.py").touch()
                    (broken / "services" / svc / "app.py").write_text(BROKEN_APP.format(svc=svc))
                    phases = {
                        "restart": (["restart", svc], env),
                        "deploy": (["run", svc], env),
                        "bad build": (["run", svc],
                                      {**env, "GUNICORN_CMD_ARGS": f"--pythonpath {broken}"}),
                    }
                    for phase, (argv, phase_env) in phases.items():
                        start = time.monotonic()
                        out, err = io.StringIO(), io.StringIO()
                        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                            code = runner(argv, environ=phase_env, var=var)
                        time.sleep(SETTLE_S)
                        end = time.monotonic()
                        window = [a for a in list(load.answers) if start <= a.at <= end]
                        results[f"{svc} {phase}"] = {**summary(window), "exit": code,
                                                     "seconds": round(end - start, 1)}
            finally:
                load.close()
            results["whole run"] = summary(load.answers)
    return results


def report(results: dict[str, Any]) -> bool:
    ok = True
    print(f"{'phase':<22}{'requests':>9}{'failed':>8}{'p50 ms':>9}{'p99 ms':>9}{'exit':>6}"
          f"{'s':>7}")
    for name, r in results.items():
        expected_exit = 1 if name.endswith("bad build") else 0
        exit_ok = "exit" not in r or r["exit"] == expected_exit
        phase_ok = r["failed"] == 0 and r["p99_ms"] < P99_TARGET_MS and exit_ok
        ok &= phase_ok
        print(f"{name:<22}{r['requests']:>9}{r['failed']:>8}{r['p50_ms']:>9}{r['p99_ms']:>9}"
              f"{r.get('exit', ''):>6}{r.get('seconds', ''):>7}  {'ok' if phase_ok else 'MISSED'}"
              f"{'  failed: ' + str(r['statuses']) if r['failed'] else ''}")
    print(f"\ntargets: 0 failed requests and p99 < {P99_TARGET_MS:g} ms in every phase; "
          f"a bad build exits 1 and the old version keeps serving: {'met' if ok else 'MISSED'}")
    return ok
