"""`python -m studio start`: the data browser in the background, on STUDIO_HOST:STUDIO_PORT
(127.0.0.1:5555), as `make studio` runs it.

It runs under gunicorn (one process, a few threads) started by the local runner's spawn, so
its pid is in var/run/studio.pid and its log in var/log/studio.log; `make studio-stop` and
`make stop` stop exactly that pid (deploy/local.py), never a process found by name.
`python -m studio serve` runs it in the foreground instead.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from deploy.local import DeployError, LocalSystem, http_status, port_in_use
from shared.config import load_env_file
from studio.app import StudioSettings

ROOT = Path(__file__).resolve().parent.parent
APP = "studio.app:create_app()"


def gunicorn_argv(settings: StudioSettings) -> list[str]:
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    return [gunicorn, "--bind", f"{settings.host}:{settings.port}", "--workers", "1",
            "--threads", "4", "--worker-class", "gthread", "--timeout", "60",
            "--access-logfile", "-", APP]


def start(system: LocalSystem, settings: StudioSettings, timeout: float = 30) -> int:
    pid = system.live_pid("studio")
    url = f"http://{settings.host}:{settings.port}"
    if pid is not None:
        system.say(f"studio: already running (pid {pid}) on {url}")
        return 0
    if port_in_use(settings.port, settings.host):
        raise DeployError(f"studio: port {settings.port} is in use; set STUDIO_PORT")
    system.log_dir.mkdir(parents=True, exist_ok=True)
    pid = system.spawn("studio", gunicorn_argv(settings), system.env)
    deadline = time.monotonic() + timeout
    while http_status(f"{url}/healthz", 1.0) != "200":
        if system.live_pid("studio") is None or time.monotonic() >= deadline:
            system.stop(["studio"])
            raise system.boot_failure("studio", "did not start")
        time.sleep(0.2)
    mode = "EDITING (STUDIO_WRITE=1: edits raise no events)" if settings.write else "read-only"
    system.say(f"studio: {url} (pid {pid}, {mode}; "
               f"{'password: STUDIO_PASSWORD' if settings.password else 'no password'}); "
               "stop: make studio-stop")
    return 0


def main(argv: list[str]) -> int:
    load_env_file()
    settings = StudioSettings.from_env()
    if (why := settings.refusal()) is not None:
        print(why, file=sys.stderr)
        return 2
    command = argv[0] if argv else "start"
    if command == "serve":
        os.execv(gunicorn_argv(settings)[0], gunicorn_argv(settings))
    if command != "start":
        print("usage: python -m studio [start|serve]", file=sys.stderr)
        return 2
    system = LocalSystem(ROOT)
    try:
        with system.exclusive():
            return start(system, settings)
    except DeployError as failure:
        system.warn(str(failure))
        return failure.code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
