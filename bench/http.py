"""HTTP through the real gateway: nginx in front of auth's and goals' gunicorn web processes,
started as production starts them (deploy/gunicorn.conf.py, deploy/render_nginx.py), loaded
with wrk.

Everything is its own: database `growth_diary_bench_http`, bus namespace, free ports, signing
keys and gateway files in a temporary directory, so a running dev system is not disturbed and
does not disturb the figures. No worker runs: the outbox rows the setup writes stay unsent.

Each endpoint gets a warm-up run, then BENCH_HTTP_DURATION of measurement cut into
BENCH_HTTP_ROUNDS slices, the endpoints taking turns slice by slice (a machine shared with
other work then weighs on all of them alike): GET /goals/healthz, GET /goals?limit=20
(20 goals, bearer token), GET /auth/healthz, GET /auth/me (bearer token). An endpoint's
throughput is over all its slices; its percentiles are the median of its slices'.
Afterwards the RSS and PSS of every gunicorn worker, and of the workers of bench/floor_app.py
(the fixed stack alone serving the same read: the floor those figures are read against).

Environment: BENCH_HTTP_DURATION (8s), BENCH_HTTP_ROUNDS (4), BENCH_HTTP_WARMUP (2s),
BENCH_HTTP_THREADS (2),
BENCH_HTTP_CONNECTIONS (16) for wrk; WEB_CONCURRENCY / WEB_THREADS as for production;
NGINX / WRK (paths to the binaries; else found on PATH, else installed with apt-get).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
# BENCH_DATABASE_NAME names it (a suffix is added): dropped and made anew at start.
DATABASE = os.environ.get("BENCH_DATABASE_NAME", "growth_diary_bench") + "_http"
NAMESPACE = f"benchhttp{os.getpid()}"
SERVICES = ("auth", "goals")
GOALS = 20
MIN_SERVED = 10_000  # requests served before memory is read
# The environment as given: the pipeline section rewrites os.environ when it runs first.
BASE_ENV = dict(os.environ)

ENDPOINTS = {  # name -> (path, needs the bearer token)
    "goals_healthz": ("/goals/healthz", False),
    "goals_list": ("/goals?limit=20", True),
    "auth_healthz": ("/auth/healthz", False),
    "auth_me": ("/auth/me", True),
}

# Bearer token from BENCH_TOKEN; responses other than 200 counted exactly (wrk itself counts
# only status > 399); one JSON line with the figures from wrk's done() hook.
WRK_SCRIPT = r"""
local token = os.getenv("BENCH_TOKEN") or ""
if token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
local threads = {}
function setup(thread) table.insert(threads, thread) end
non200 = 0
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1 end
end
function done(summary, latency, requests)
  local non200_total = 0
  for _, t in ipairs(threads) do non200_total = non200_total + t:get("non200") end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format('BENCH_WRK {"requests":%d,"duration_s":%.3f,"rps":%.1f,'
    .. '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,'
    .. '"non_200":%d,"non_2xx_3xx":%d,"socket_errors":%d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3, non200_total, e.status,
    e.connect + e.read + e.write + e.timeout))
end
"""


def ensure_binary(name: str, package: str) -> str:
    """$<NAME>, else on PATH or in /usr/sbin, else `apt-get install` it (as root)."""
    found = BASE_ENV.get(name.upper()) or shutil.which(name) or shutil.which(
        name, path="/usr/sbin:/usr/bin")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit(f"bench: {name} is missing: sudo apt-get install -y {package}")
    print(f"bench: installing {package} (apt-get)", flush=True)
    apt_env = {**BASE_ENV, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", package]
    if subprocess.run(install, env=apt_env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=apt_env, check=True)
        subprocess.run(install, env=apt_env, stdout=subprocess.DEVNULL, check=True)
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if not found:
        raise SystemExit(f"bench: {package} installed but no {name} binary found")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_kib(path: Path, key: str) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} in {path}")


def _cpu_busy(seconds: float = 1.0) -> float:
    """Share of all cores' time not idle over `seconds` (/proc/stat)."""
    def sample() -> tuple[int, int]:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(ticks), ticks[3] + ticks[4]  # total, idle + iowait

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # fields after "(comm)": state ppid
            kids.append(int(entry.name))
    return sorted(kids)


class Stack:
    """auth + goals web processes (or `services`) and the gateway, started and stopped by
    pid, in `database` and bus `namespace` of their own."""

    def __init__(self, root: Path, nginx: str, extra_env: dict[str, str] | None = None, *,
                 services: tuple[str, ...] = SERVICES, database: str = DATABASE,
                 namespace: str = NAMESPACE, log_prefix: str = "bench-http") -> None:
        self.root, self.nginx = root, nginx
        self.services, self.database, self.log_prefix = services, database, log_prefix
        self.ports = {svc: free_port() for svc in ("auth", "goals", "diary", "stories")}
        gateway_port = free_port()
        self.url = f"http://127.0.0.1:{gateway_port}"
        self.webs: dict[str, subprocess.Popen[bytes]] = {}
        self.nginx_pid: int | None = None
        self.logs = ROOT / "var" / "log"
        env = {k: v for k, v in BASE_ENV.items() if k not in {"BIND", "GUNICORN_CONTROL_SOCKET"}}
        env.update({f"{svc.upper()}_PORT": str(port) for svc, port in self.ports.items()})
        # Services not started: their upstreams are free ports, never the dev ones.
        env.update(DATABASE_NAME=database, EVENT_NAMESPACE=namespace,
                   GATEWAY_PORT=str(gateway_port),
                   AUTH_JWKS_URL=f"http://127.0.0.1:{self.ports['auth']}/auth/.well-known/jwks.json",
                   AUTH_KEYS_DIR=str(root / "keys"), MAIL_DIR=str(root / "mail"),
                   PYTHONUNBUFFERED="1")
        env.update(extra_env or {})  # e.g. tracing on (bench/tracing.py)
        self.env = env

    def python(self, *args: str) -> None:
        subprocess.run([sys.executable, *args], env=self.env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)

    def start(self) -> None:
        from shared.keys import generate

        self.python("-m", "shared.bootstrap", "--database", self.database, "--drop")
        for svc in self.services:
            self.python("-m", "shared.migrate", svc, "upgrade", "head")
        generate(self.root / "keys")
        self.logs.mkdir(parents=True, exist_ok=True)
        for svc in self.services:
            prom = self.root / "prometheus" / svc
            prom.mkdir(parents=True)
            env = {**self.env, "SERVICE": svc, "BIND": f"127.0.0.1:{self.ports[svc]}",
                   "PROMETHEUS_MULTIPROC_DIR": str(prom)}
            with open(self.log_path(svc), "wb") as log:  # this run's only
                self.webs[svc] = subprocess.Popen(
                    [str(ROOT / ".venv" / "bin" / "gunicorn"), "--config",
                     "deploy/gunicorn.conf.py", f"services.{svc}.app:create_app()"],
                    env=env, cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
        self._start_gateway()
        for svc in self.services:
            self._wait_ready(svc)

    def _start_gateway(self) -> None:
        self.python("deploy/render_nginx.py", "local", "--root", str(self.root))
        var = self.root / "var"
        for sub in ("run", "log"):
            (var / sub).mkdir(parents=True, exist_ok=True)
        started = subprocess.run(
            [self.nginx, "-p", str(var / "nginx"), "-e", str(var / "log" / "nginx-error.log"),
             "-c", str(var / "nginx" / "nginx.conf")], capture_output=True, text=True)
        if started.returncode != 0:
            raise RuntimeError(f"nginx did not start: {started.stderr.strip()}")
        pid_file = var / "run" / "nginx.pid"  # nginx daemonises and writes its own pid
        deadline = time.monotonic() + 5
        while not pid_file.exists() or not pid_file.read_text().strip():
            if time.monotonic() > deadline:
                raise RuntimeError("nginx wrote no pid file")
            time.sleep(0.05)
        self.nginx_pid = int(pid_file.read_text())

    def _wait_ready(self, svc: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.webs[svc].poll() is not None:
                raise RuntimeError(f"{svc} web exited during start-up:\n{self.log_tail(svc)}")
            try:
                if requests.get(f"{self.url}/{svc}/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{svc} not ready through the gateway:\n{self.log_tail(svc)}")

    def log_path(self, svc: str) -> Path:
        return self.logs / f"{self.log_prefix}-{svc}-web.log"

    def log_tail(self, svc: str, lines: int = 25) -> str:
        tail = self.log_path(svc).read_text(errors="replace").splitlines()[-lines:]
        return "\n".join([*tail, f"(whole log: {self.log_path(svc)})"])

    def workers(self) -> dict[str, list[int]]:
        return {svc: _children(proc.pid) for svc, proc in self.webs.items()}

    def stop(self) -> None:
        if self.nginx_pid is not None:
            _stop_pid(self.nginx_pid, signal.SIGQUIT)  # nginx's graceful stop
        for proc in self.webs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.webs.values():
            try:
                proc.wait(35)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: master and workers
                proc.wait(5)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _stop_pid(pid: int, sig: signal.Signals, timeout: float = 10.0) -> None:
    """Signal a process that is not our child (nginx daemonised) and wait for it to go."""
    if not _alive(pid):
        return
    os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.05)


def _seed(url: str) -> str:
    """A user registered and logged in through the API, with GOALS goals; its access token."""
    email = f"bench-{secrets.token_hex(6)}@example.com"
    password = secrets.token_urlsafe(18)
    http = requests.Session()

    def call(method: str, path: str, expect: int, **kwargs: Any) -> dict[str, Any]:
        resp = http.request(method, url + path, timeout=10, allow_redirects=False, **kwargs)
        if resp.status_code != expect:
            raise RuntimeError(f"{method} {path}: {resp.status_code} {resp.text[:300]}")
        body: dict[str, Any] = resp.json()
        return body

    call("POST", "/auth/register", 201, json={"email": email, "password": password,
                                              "name": "Bench"})
    token = str(call("POST", "/auth/login", 200,
                     json={"email": email, "password": password})["accessToken"])
    http.headers["Authorization"] = f"Bearer {token}"
    for i in range(GOALS):
        call("POST", "/goals", 201, json={"title": f"bench goal {i}", "period": "DAILY"})
    listed = call("GET", ENDPOINTS["goals_list"][0], 200)["items"]
    if len(listed) != GOALS:
        raise RuntimeError(f"GET /goals?limit=20 listed {len(listed)} goals, not {GOALS}")
    for path, _ in ENDPOINTS.values():
        call("GET", path, 200)
    return token


class Wrk:
    def __init__(self, binary: str, root: Path, url: str, token: str) -> None:
        self.binary, self.url = binary, url
        self.env = {**BASE_ENV, "BENCH_TOKEN": token}
        self.script = root / "bench.lua"
        self.script.write_text(WRK_SCRIPT)
        self.threads = BASE_ENV.get("BENCH_HTTP_THREADS") or "2"
        self.connections = BASE_ENV.get("BENCH_HTTP_CONNECTIONS") or "16"
        self.duration = BASE_ENV.get("BENCH_HTTP_DURATION") or "8s"
        self.warmup = BASE_ENV.get("BENCH_HTTP_WARMUP") or "2s"

    def describe(self) -> str:
        return (f"wrk -t{self.threads} -c{self.connections} -d{self.duration} "
                f"(after a -d{self.warmup} warm-up)")

    def run(self, path: str, authorized: bool, duration: str) -> dict[str, float]:
        env = self.env if authorized else {**self.env, "BENCH_TOKEN": ""}
        done = subprocess.run(
            [self.binary, f"-t{self.threads}", f"-c{self.connections}", f"-d{duration}",
             "-s", str(self.script), self.url + path],
            env=env, capture_output=True, text=True)
        lines = [x for x in done.stdout.splitlines() if x.startswith("BENCH_WRK ")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"wrk {path} failed:\n{done.stdout}{done.stderr}")
        line = lines[0]
        figures: dict[str, float] = json.loads(line.split(" ", 1)[1])
        return figures


def _memory(stack: Stack) -> dict[str, list[dict[str, float]]]:
    return {svc: _worker_memory(pids) for svc, pids in stack.workers().items()}


def _worker_memory(pids: list[int]) -> list[dict[str, float]]:
    return [{"pid": pid,
             "rss_mib": _proc_kib(Path(f"/proc/{pid}/status"), "VmRSS") / 1024,
             "rss_anon_mib": _proc_kib(Path(f"/proc/{pid}/status"), "RssAnon") / 1024,
             "rss_file_mib": _proc_kib(Path(f"/proc/{pid}/status"), "RssFile") / 1024,
             "pss_mib": _proc_kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss") / 1024}
            for pid in pids]


def _floor_memory(stack: Stack, wrk: Wrk) -> dict[str, Any]:
    """bench/floor_app.py (the fixed stack alone, the same read) under gunicorn with preload
    and as many sync workers as ours, direct: its workers' memory after MIN_SERVED requests."""
    from shared.config import database_url

    port = free_port()
    workers = BASE_ENV.get("WEB_CONCURRENCY") or "3"
    env = {**BASE_ENV, "FLOOR_DATABASE_URL": database_url("goals", stack.database)}
    with open(stack.logs / f"{stack.log_prefix}-floor-web.log", "wb") as log:
        proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "--preload", "-w", workers,
             "-b", f"127.0.0.1:{port}", "bench.floor_app:app"],
            env=env, cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
    try:
        url, deadline = f"http://127.0.0.1:{port}/floor/goals", time.monotonic() + 30
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the floor app did not start (see {log.name})")
            with contextlib.suppress(requests.RequestException, ValueError, KeyError):
                if len(requests.get(url, timeout=2).json()["items"]) == GOALS:
                    break
            time.sleep(0.2)
        served = 0
        while served < MIN_SERVED * int(workers):  # as many per worker as ours at least
            served += int(Wrk(wrk.binary, stack.root, f"http://127.0.0.1:{port}", "")
                          .run("/floor/goals", False, wrk.warmup)["requests"])
        return {"served": served, "workers": _worker_memory(_children(proc.pid))}
    finally:
        proc.terminate()
        try:
            proc.wait(35)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def measure_http(extra_env: dict[str, str] | None = None, *,
                 floor: bool = True) -> dict[str, Any]:
    nginx = ensure_binary("nginx", "nginx-light")
    wrk_bin = ensure_binary("wrk", "wrk")
    root = Path(tempfile.mkdtemp(prefix="bench-http-"))
    stack = Stack(root, nginx, extra_env)
    busy = _cpu_busy()  # the machine is shared: how busy it was before we started anything
    try:
        stack.start()
        token = _seed(stack.url)
        wrk = Wrk(wrk_bin, root, stack.url, token)
        (runs,), rounds, served = _interleaved([wrk])
        top_up = []
        list_path, _ = ENDPOINTS["goals_list"]
        while served < MIN_SERVED:  # only with short runs: memory is read after 10,000
            top_up.append(wrk.run(list_path, True, wrk.warmup))
            served += int(top_up[-1]["requests"])
        memory = _memory(stack)
        return {"wrk": wrk.describe() + f", in {rounds} interleaved slices per endpoint",
                "runs": runs, "top_up": top_up, "served": served,
                "ratios": _ratios(runs), "memory": memory,
                "floor": _floor_memory(stack, wrk) if floor else None,
                "web_threads": int(BASE_ENV.get("WEB_THREADS") or "1"),  # gunicorn.conf default
                "cpu_busy_before": busy}
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def _interleaved(wrks: list[Wrk]) -> tuple[list[dict[str, Any]], int, int]:
    """Every endpoint of every stack (a Wrk each) warmed up, then measured in
    BENCH_HTTP_ROUNDS slices taken in turns, endpoint by endpoint and stack by stack: the
    machine is shared, and whatever else runs weighs on all of them alike instead of on
    whichever had its turn at the time. Per stack its endpoints' combined runs; the rounds;
    the requests served in all."""
    served = 0
    for wrk in wrks:
        for path, authorized in ENDPOINTS.values():
            served += int(wrk.run(path, authorized, wrk.warmup)["requests"])
    slices: list[dict[str, list[dict[str, float]]]] = [
        {name: [] for name in ENDPOINTS} for _ in wrks]
    rounds = max(1, int(BASE_ENV.get("BENCH_HTTP_ROUNDS") or "4"))
    seconds = _seconds(wrks[0].duration) / rounds
    for _ in range(rounds):
        for name, (path, authorized) in ENDPOINTS.items():
            for wrk, taken in zip(wrks, slices, strict=True):
                taken[name].append(wrk.run(path, authorized, f"{seconds:g}s"))
                served += int(taken[name][-1]["requests"])
    return ([{name: _combined(runs) for name, runs in taken.items()} for taken in slices],
            rounds, served)


def measure_http_side_by_side(envs: dict[str, dict[str, str]]) -> dict[str, dict[str, Any]]:
    """One stack per entry of `envs` (its extra environment), all running at once, each in
    a database, namespace, port set and log prefix of its own, loaded in turns
    (`_interleaved`): the figures of each, for a comparison no drift between runs can
    bend (bench/tracing.py: tracing off and on)."""
    nginx = ensure_binary("nginx", "nginx-light")
    wrk_bin = ensure_binary("wrk", "wrk")
    stacks: dict[str, Stack] = {}
    roots: list[Path] = []
    try:
        wrks = []
        for label, extra_env in envs.items():
            roots.append(Path(tempfile.mkdtemp(prefix=f"bench-http-{label}-")))
            stack = stacks[label] = Stack(
                roots[-1], nginx, extra_env, database=f"{DATABASE}_{label}",
                namespace=f"{NAMESPACE}{label}", log_prefix=f"bench-http-{label}")
            stack.start()
            wrks.append(Wrk(wrk_bin, roots[-1], stack.url, _seed(stack.url)))
        runs, _, _ = _interleaved(wrks)
        return dict(zip(envs, runs, strict=True))
    finally:
        for stack in stacks.values():
            stack.stop()
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)


def _seconds(duration: str) -> float:
    """wrk's duration ("8s", "1m", "500ms") in seconds."""
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if duration.endswith(suffix):
            return float(duration[:-len(suffix)]) * scale
    return float(duration)


def _combined(slices: list[dict[str, float]]) -> dict[str, Any]:
    """One endpoint's slices as one run: throughput over all of them; each percentile the
    median of the slices' (a slice's tail is its own, not blurred into the others'); the
    worst max; errors summed."""
    def median(key: str) -> float:
        return statistics.median(s[key] for s in slices)

    requests = sum(s["requests"] for s in slices)
    duration = sum(s["duration_s"] for s in slices)
    return {"requests": requests, "duration_s": duration, "rps": requests / duration,
            "p50_ms": median("p50_ms"), "p90_ms": median("p90_ms"), "p99_ms": median("p99_ms"),
            "max_ms": max(s["max_ms"] for s in slices),
            "non_200": sum(s["non_200"] for s in slices),
            "non_2xx_3xx": sum(s["non_2xx_3xx"] for s in slices),
            "socket_errors": sum(s["socket_errors"] for s in slices),
            "slice_rps": [s["rps"] for s in slices]}


def _ratios(runs: dict[str, dict[str, float]]) -> dict[str, float]:
    return {
        "goals_list/healthz throughput": runs["goals_list"]["rps"] / runs["goals_healthz"]["rps"],
        "auth_me/healthz throughput": runs["auth_me"]["rps"] / runs["auth_healthz"]["rps"],
        "goals_list/healthz p99": runs["goals_list"]["p99_ms"] / runs["goals_healthz"]["p99_ms"],
        "auth_me/healthz p99": runs["auth_me"]["p99_ms"] / runs["auth_healthz"]["p99_ms"],
    }


TARGETS = {  # ratio -> (">=" or "<=", target)
    "goals_list/healthz throughput": (">=", 0.4),
    "auth_me/healthz throughput": (">=", 0.5),
    "goals_list/healthz p99": ("<=", 3.0),
    "auth_me/healthz p99": ("<=", 3.0),
}
MAX_RSS_MIB = 60.0


def report(result: dict[str, Any]) -> bool:
    """Print every figure, ratio and target; True when every target is met."""
    runs = result["runs"]
    workers = ", ".join(f"{svc} {len(procs)}" for svc, procs in result["memory"].items())
    print(f"\nhttp through nginx: {result['wrk']}; gunicorn workers: {workers}, "
          f"{result['web_threads']} threads each; CPU {result['cpu_busy_before']:.0%} busy "
          "(all cores) in the second before the run")
    ok = True
    for name, (path, _) in ENDPOINTS.items():
        r = runs[name]
        print(f"  GET {path:<18}{r['rps']:>8.0f} req/s  p50 {r['p50_ms']:6.2f} ms  "
              f"p90 {r['p90_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms  max {r['max_ms']:7.2f} ms"
              f"  ({r['requests']:.0f} requests, {r['non_200']:.0f} non-200, "
              f"{r['socket_errors']:.0f} socket errors)")
        print(f"  {'':<22}slices: {', '.join(f'{x:.0f}' for x in r['slice_rps'])} req/s")
    for r in [*runs.values(), *result["top_up"]]:
        ok &= r["non_200"] == 0 and r["non_2xx_3xx"] == 0 and r["socket_errors"] == 0
    if not ok:
        print("  FAILED: responses other than 200, or socket errors")
    for label, value in result["ratios"].items():
        op, target = TARGETS[label]
        met = value >= target if op == ">=" else value <= target
        ok &= met
        print(f"  {label}: {value:.3f}  (target {op} {target}){'' if met else '  MISSED'}")
    print(f"  gunicorn workers after {result['served']:.0f} requests "
          f"(target RSS <= {MAX_RSS_MIB:.0f} MiB each):")
    for svc, procs in result["memory"].items():
        for p in procs:
            met = p["rss_mib"] <= MAX_RSS_MIB
            ok &= met
            print(f"    {svc} worker pid {p['pid']:.0f}: {_rss(p)}{'' if met else '  MISSED'}")
    floor = result["floor"]
    if floor is None:
        return ok
    print(f"  the fixed stack alone (bench/floor_app.py: the same read through flask-smorest, "
          f"marshmallow, the SQLAlchemy ORM and psycopg; gunicorn --preload), workers after "
          f"{floor['served']:.0f} requests:")
    for p in floor["workers"]:
        print(f"    floor worker pid {p['pid']:.0f}: {_rss(p)}")
    least = min(p["rss_mib"] for p in floor["workers"])
    for svc, procs in result["memory"].items():
        ours = statistics.median(p["rss_mib"] for p in procs)
        print(f"  {svc} worker RSS / the floor's: {ours / least:.2f} "
              f"({ours - least:+.1f} MiB over what the libraries alone hold)")
    return ok


def _rss(p: dict[str, float]) -> str:
    return (f"RSS {p['rss_mib']:.1f} MiB (anonymous {p['rss_anon_mib']:.1f}, files "
            f"{p['rss_file_mib']:.1f}), PSS {p['pss_mib']:.1f} MiB")
