"""Gunicorn settings shared by every service's web process.

    gunicorn --config deploy/gunicorn.conf.py "services.<svc>.app:create_app()"

Environment:
    SERVICE                   service name (else taken from the app argument), for defaults/logs
    BIND                      listen address (default 127.0.0.1:<SVC>_PORT)
    WEB_CONCURRENCY           worker processes (default 2)
    WEB_THREADS               threads per worker (default 4; 1 = classic sync workers)
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

Signals (what the local runner, python -m deploy, uses): HUP = graceful reload (new workers
with new code, old ones finish their requests), TERM = graceful stop within graceful_timeout.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger

# The repo root (/app in the image) holds shared/; appended, so it never shadows the app's path.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

from shared.services import SERVICE_PORTS, port_of  # noqa: E402


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
workers = int(_env("WEB_CONCURRENCY", "2"))
threads = int(_env("WEB_THREADS", "4"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(_env("WEB_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
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
    """Master start: begin with an empty metrics dir (stale files would double-count)."""
    path = _multiproc_dir()
    if not path:
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
