"""Gunicorn settings shared by every service's web process.

    gunicorn --config deploy/gunicorn.conf.py "services.<svc>.app:create_app()"

Environment:
    SERVICE                   service name (else taken from the app argument), for defaults/logs
    BIND                      listen address (default 127.0.0.1:<SVC>_PORT)
    WEB_CONCURRENCY           worker processes (default 3)
    WEB_THREADS               threads per worker (default 1: sync workers; more makes them gthread)
    WEB_TIMEOUT               seconds before a silent worker is killed (default 30)
    ACCESS_LOG                "1"/"-" for a JSON access log on stdout (default off; the
                              gateway already writes one)
    LOG_LEVEL                 gunicorn's own log level (default info)
    FORWARDED_ALLOW_IPS       proxies trusted for X-Forwarded-* (default 127.0.0.1,::1)
    PROMETHEUS_MULTIPROC_DIR  per-service metrics dir (multiprocess mode); emptied at start.
                              Unset: a fresh temporary dir, since with several workers the
                              per-process default registry would give wrong numbers.
    GUNICORN_CONTROL_SOCKET   path for gunicornc's control socket (default: disabled, so
                              several masters on one machine do not fight over one socket)
    WEB_HANDOVER_DIR          set by the local runner: where a USR2 re-exec finds the
                              environment of the new master and reports its pid and its
                              workers' readiness (see pre_exec and post_worker_init)

The app is loaded once, in the master (preload_app), and its objects frozen out of the
garbage collector's reach before each fork, so the workers share those pages instead of each
faulting in (and a collection dirtying) a copy of its own.

Signals: USR2 = start a new master on the current code beside this one, on the same
listening socket (what the local runner, python -m deploy, does to deploy; it then TERMs
the old master once the new one's workers are ready); TERM = graceful stop within
graceful_timeout. HUP forks new workers from this master's already loaded app: with
preload_app it does not load new code.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import io
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger

# The repo root (/app in the image) holds shared/; appended, so it never shadows the app's path.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

from shared.config import load_env_file  # noqa: E402
from shared.services import SERVICE_PORTS, port_of  # noqa: E402

# An entry point: `.env` (never over the real environment) for a gunicorn started by hand.
load_env_file()


def _service() -> str:
    name = os.environ.get("SERVICE", "")
    if name:
        return name
    for arg in sys.argv[1:]:
        match = re.search(r"services\.(\w+)\.app", arg)
        if match:
            return match.group(1)
    return "web"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "")
    return value if value else default


SERVICE = _service()
_port = port_of(SERVICE) if SERVICE in SERVICE_PORTS else 8000

bind = [_env("BIND", f"127.0.0.1:{_port}")]
preload_app = True
# Sync workers by default: behind nginx (which buffers slow clients) they answered more
# requests with a third of the p99 of 4-thread gthread workers (bench/http.py: goals list
# p99 38-50 ms against 76-80 ms), because threads of one process queue for the GIL after
# every database round trip.
workers = int(_env("WEB_CONCURRENCY", "3"))
threads = int(_env("WEB_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(_env("WEB_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# The gateway refuses request lines over 4 KiB itself, in problem+json; gunicorn's own limit
# (HTML errors) sits above it, so it is never the one to answer.
limit_request_line = 8190
proc_name = f"growth-diary-{SERVICE}-web"
forwarded_allow_ips = _env("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# Heartbeat files on tmpfs where there is one (containers: a disk-backed /tmp can stall workers).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

control_socket = _env("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket

loglevel = _env("LOG_LEVEL", "info").lower()
errorlog = "-"
accesslog = "-" if _env("ACCESS_LOG", "").lower() in {"1", "-", "true", "yes", "on"} else None


class JsonAccessLogger(Logger):  # type: ignore[misc]
    """Access log lines as one JSON object each (safe against quotes in headers)."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.cfg.accesslog:
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        headers = dict((k.lower(), v) for k, v in getattr(req, "headers", []) or [])
        record = {
            "ts": _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"),
            "level": "info",
            "logger": "access",
            "service": SERVICE,
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "query": environ.get("QUERY_STRING") or None,
            "status": int(status) if str(status).isdigit() else status,
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 2),
            "request_id": headers.get("x-request-id"),
            "remote": headers.get("x-forwarded-for") or environ.get("REMOTE_ADDR"),
            "user_agent": headers.get("user-agent"),
            "pid": os.getpid(),
        }
        try:
            self.access_log.info(json.dumps(record, separators=(",", ":")))
        except Exception:  # a log line must never break a response
            self.exception("access log failed")


logger_class = JsonAccessLogger


# Set before any worker forks (and before the app imports prometheus_client). A reload (HUP)
# re-reads this file in the same master, where the variable is already set: kept as is.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=f"prometheus-{SERVICE}-")


def _multiproc_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def on_starting(server: Any) -> None:
    """Master start: begin with an empty metrics dir (stale files would double-count). Not
    in a master started by USR2: the old master's workers are still writing theirs."""
    path = _multiproc_dir()
    started_by_usr2 = getattr(server, "master_pid", 0) != 0
    if not path or started_by_usr2:
        return
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(path, name))


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: fold its live gauges out of the multiprocess metrics."""
    if not _multiproc_dir():
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def pre_fork(server: Any, worker: Any) -> None:
    """Everything the master holds now (the preloaded app above all) goes to the collector's
    permanent generation: a worker's collections never write to those objects, so their
    pages stay shared with the master. Cheap (a list splice), so done before every fork."""
    gc.freeze()


# --- handover to a new master (USR2) -------------------------------------------------------
#
# The runner writes <WEB_HANDOVER_DIR>/env.json (the environment a fresh start would get),
# then sends USR2. gunicorn forks and, in the child, calls pre_exec before exec'ing the new
# master with `cfg.env_orig`: the old master's environment unless replaced here. The new
# master's workers ask readyz in-process and write the answer to <dir>/<pid>.ready.

HANDOVER_ENV = "env.json"
HANDOVER_PID = "master.pid"
HANDOVER_RETRY_S = 0.25
HANDOVER_BODY_BYTES = 300  # of a readyz answer, for the runner's report


def _handover_dir() -> Path | None:
    value = os.environ.get("WEB_HANDOVER_DIR", "")
    return Path(value) if value else None


def _write(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text)
    partial.replace(path)


def pre_exec(server: Any) -> None:
    """In the child that becomes the new master, before its exec: a session of its own (so a
    forced stop of either master by process group never reaches the other), the environment
    the runner left for it, and its pid where the runner looks."""
    with contextlib.suppress(OSError):
        os.setsid()
    directory = _handover_dir()
    if directory is None:
        return
    try:
        env = json.loads((directory / HANDOVER_ENV).read_text())
        server.cfg.env_orig = {str(k): str(v) for k, v in env.items()}
    except (OSError, ValueError, AttributeError) as exc:
        server.log.error("handover: %s not read (%s): the new master keeps this one's "
                         "environment", directory / HANDOVER_ENV, exc)
    with contextlib.suppress(OSError):
        _write(directory / HANDOVER_PID, f"{os.getpid()}\n")


def _ask(app: Any, path: str) -> tuple[str, str]:
    """The status `app` answers GET `path` with, and the start of its body, called in-process
    (no socket: the listening one is shared with the old master's workers, which would
    answer as often as not)."""
    host, _, port = bind[0].rpartition(":")
    environ = {
        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": host or "127.0.0.1", "SERVER_PORT": port or "80",
        "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": bind[0], "REMOTE_ADDR": "127.0.0.1",
        "HTTP_X_REQUEST_ID": f"handover-{os.getpid()}",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr, "wsgi.multithread": threads > 1,
        "wsgi.multiprocess": True, "wsgi.run_once": False,
    }
    answered: list[str] = []
    body = b""

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        answered.append(status)
        return lambda data: None

    try:
        chunks = app(environ, start_response)
        try:
            for chunk in chunks:
                body += chunk[:HANDOVER_BODY_BYTES - len(body)]
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
    except Exception as exc:  # report, the runner decides
        return "error", " ".join(f"{type(exc).__name__}: {exc}".split())[:HANDOVER_BODY_BYTES]
    status = answered[0].split(None, 1)[0] if answered else "none"
    return status, " ".join(body.decode(errors="replace").split())


def post_worker_init(worker: Any) -> None:
    """In a worker of a master started by USR2, before it accepts a connection: ask the app
    for readyz until it answers 200, each answer written for the runner to <dir>/<pid>.ready
    ("<status> <workers wanted>", then the start of the body). So a new version that is not
    ready never takes a request from the shared socket: the old workers keep answering, and
    the runner stops this master when it gives up. Not once the new master is promoted
    (gunicorn then drops GUNICORN_PID from its environment): later workers start at once, as
    on a fresh start."""
    directory = _handover_dir()
    if directory is None or not os.environ.get("GUNICORN_PID"):
        return
    while worker.alive:  # TERM (the runner giving up) ends the wait, and the worker
        status, body = _ask(worker.wsgi, f"/{SERVICE}/readyz")
        with contextlib.suppress(OSError):  # the handover may be over (directory removed)
            _write(directory / f"{os.getpid()}.ready",
                   f"{status} {worker.cfg.workers}\n{body}\n")
        if status == "200":
            return
        worker.notify()  # alive, for the master's timeout
        time.sleep(HANDOVER_RETRY_S)
