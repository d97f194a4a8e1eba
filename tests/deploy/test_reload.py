"""A rolling reload of a web process (gunicorn USR2, then TERM to the old master), with a tiny
WSGI app in place of the goals service: served by the real deploy/gunicorn.conf.py, started
and rolled by the real runner, needing no database. What it reads from its environment
(APP_VERSION, APP_BROKEN, APP_READY) shows which master answered and with what settings."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy import local
from deploy.local import LocalSystem, main, running
from tests.helpers import wait_for

APP = '''\
import os
import time

VERSION = os.environ.get("APP_VERSION", "?")
if os.environ.get("APP_BROKEN"):
    raise ImportError("simulated: this version of the goals app does not import")


def create_app():
    ready = os.environ.get("APP_READY", "1") == "1"

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        status = "200 OK"
        if path == "/goals/readyz" and not ready:
            status = "503 Service Unavailable"
        elif path == "/goals/slow":
            open(os.environ["APP_SLOW_MARKER"], "w").close()  # in an old worker's hands now
            time.sleep(1.0)
        body = f"{VERSION} {os.getpid()}".encode()
        start_response(status, [("Content-Type", "text/plain"),
                                ("Content-Length", str(len(body)))])
        return [body]

    return app
'''

WORKER = '''\
import time

time.sleep(600)  # stands in for services.goals.worker: SIGTERM ends it
'''

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with _NO_PROXY.open(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except OSError as exc:
        return 0, type(exc).__name__


@pytest.fixture
def app_env(tmp_path: Path, environ: dict[str, str]) -> dict[str, str]:
    """The tiny app and a stand-in worker ahead of the real services: gunicorn's own
    --pythonpath goes before the checkout it puts on sys.path; for `python -m`, PYTHONPATH
    with PYTHONSAFEPATH (no checkout first). Two folders: a folder on PYTHONPATH already is
    on sys.path, so gunicorn would not move it ahead of the checkout."""
    for folder, module, text in (("app", "app.py", APP), ("worker", "worker.py", WORKER)):
        goals = tmp_path / folder / "services" / "goals"
        goals.mkdir(parents=True)
        (goals.parent / "__init__.py").touch()
        (goals / "__init__.py").touch()
        (goals / module).write_text(text)
    environ.update(GUNICORN_CMD_ARGS=f"--pythonpath {tmp_path / 'app'}",
                   PYTHONPATH=str(tmp_path / "worker"), PYTHONSAFEPATH="1",
                   APP_VERSION="1", WEB_CONCURRENCY="2", WEB_THREADS="2",
                   APP_SLOW_MARKER=str(tmp_path / "slow-request-started"))
    return environ


@pytest.fixture
def runners(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[LocalSystem]]:
    """Every LocalSystem `main` makes, kept until the end of the test: a process it started
    is its child here (not a separate command's), to be reaped once stopped."""
    made: list[LocalSystem] = []

    class Kept(LocalSystem):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(local, "LocalSystem", Kept)
    yield made
    for system in made:
        for proc in system.spawned.values():
            proc.wait(10)


@pytest.fixture
def started(app_env: dict[str, str], var: Path,
            runners: list[LocalSystem]) -> Iterator[LocalSystem]:
    """goals' web (version 1) and worker, as `make run` leaves them; stopped afterwards."""
    system = LocalSystem(environ=app_env, var=var)
    try:
        system.start_webs(["goals"])
        system.start_worker("goals")
        yield system
    finally:
        main(["stop"], environ=app_env, var=var)
        for proc in system.spawned.values():
            proc.wait(10)


class Load:
    """GET /goals/version in a loop from a thread (a new connection each, as the gateway
    makes them), every answer kept."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/goals/version"
        self.answers: list[tuple[float, int, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            status, body = get(self.url)
            self.answers.append((time.monotonic(), status, body))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def wait(self, answers: int, *, after: float = 0.0) -> None:
        """Until `answers` more have come back after `after` (monotonic)."""
        wait_for(lambda: sum(at > after for at, _, _ in self.answers) >= answers,
                 timeout=10, message=f"{answers} answers")

    def failures(self) -> list[tuple[int, str]]:
        return [(status, body) for _, status, body in self.answers if status != 200]

    def versions(self, after: float = 0.0) -> set[str]:
        return {body.split()[0] for at, status, body in self.answers
                if status == 200 and at > after}


def test_a_rolling_reload_hands_over_to_a_new_master_without_failing_a_request(
        started: LocalSystem, app_env: dict[str, str], var: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    port = started.port("goals")
    old = started.live_pid("goals-web")
    worker = started.live_pid("goals-worker")
    assert old is not None and worker is not None
    in_flight: list[tuple[int, str]] = []
    slow = threading.Thread(target=lambda: in_flight.append(
        get(f"http://127.0.0.1:{port}/goals/slow")))

    marker = Path(app_env["APP_SLOW_MARKER"])
    with Load(port) as load:
        load.wait(10)
        slow.start()
        wait_for(marker.exists, timeout=5, message="the slow request in an old worker")
        app_env.update(APP_VERSION="2", WEB_THREADS="3")  # the new master gets these
        assert main(["restart", "goals"], environ=app_env, var=var) == 0
        done = time.monotonic()
        load.wait(10, after=done)
    slow.join(5)

    out = capsys.readouterr().out
    new = started.live_pid("goals-web")
    assert new is not None and new != old
    assert (f"goals-web: rolling reload (USR2 pid {old}); settings changed since it started: "
            "WEB_THREADS\n") in out
    assert f"goals-web: new master (pid {new}) ready, stopping the old one (pid {old})" in out
    assert started.spawned["goals-web"].poll() is not None, "the old master still runs"
    assert os.getpgid(new) == new, "the new master leads a process group of its own"
    assert "WEB_THREADS=3\0" in _environ(new) and "APP_VERSION=2\0" in _environ(new)
    assert load.failures() == []
    assert load.versions() == {"1", "2"}
    assert load.versions(after=done) == {"2"}
    assert in_flight and in_flight[0][0] == 200 and in_flight[0][1].startswith("1 ")
    assert started.live_pid("goals-worker") not in (None, worker), "the worker was restarted"
    assert not started.handover_dir("goals").exists()

    # The master a reload started can itself be rolled, and stopped by its pid file.
    app_env["APP_VERSION"] = "3"
    assert main(["restart", "goals"], environ=app_env, var=var) == 0
    newest = started.live_pid("goals-web")
    assert newest not in (None, new)
    assert get(f"http://127.0.0.1:{port}/goals/version")[1].startswith("3 ")
    assert not running(new)
    assert main(["stop", "goals"], environ=app_env, var=var) == 0
    assert newest is not None and not running(newest)
    assert get(f"http://127.0.0.1:{port}/goals/version")[0] == 0


@pytest.mark.parametrize(("setting", "failure"), [
    ({"APP_BROKEN": "1"}, "exited: the new version did not boot"),
    ({"APP_READY": "0", "READY_TIMEOUT": "2"}, "is not ready after 2s (its workers' readyz: "),
])
def test_a_new_version_that_fails_leaves_the_old_one_serving(
        started: LocalSystem, app_env: dict[str, str], var: Path, setting: dict[str, str],
        failure: str, capsys: pytest.CaptureFixture[str]) -> None:
    port = started.port("goals")
    old = started.live_pid("goals-web")
    worker = started.live_pid("goals-worker")
    assert old is not None and worker is not None
    capsys.readouterr()

    with Load(port) as load:
        load.wait(10)
        assert main(["restart", "goals"], environ={**app_env, "APP_VERSION": "2", **setting},
                    var=var) == 1
        load.wait(10, after=time.monotonic())

    err = capsys.readouterr().err
    assert "deploy: goals-web: the new master (pid " in err
    assert failure in err
    assert f"pid {old} keeps serving the old" in err
    assert "--- last 20 lines of" in err
    if "APP_BROKEN" in setting:
        assert "first error: ImportError: simulated: this version of the goals app does " \
               "not import" in err
        assert "simulated: this version of the goals app does not import" \
               in err.split("--- last 20 lines of", 1)[1]
    else:
        assert "503" in err
        assert "\n  readyz said: 2 " in err  # the start of the new version's answer
    assert load.failures() == []
    assert load.versions() == {"1"}
    assert started.live_pid("goals-web") == old
    assert started.live_pid("goals-worker") == worker, "a failed deploy restarted the worker"
    assert [pid for pid in _children(old) if "GUNICORN_PID" in _environ(pid)] == [], \
        "the new master was left running"
    assert not started.handover_dir("goals").exists()


def test_a_web_that_cannot_be_rolled_is_restarted_and_says_why(
        app_env: dict[str, str], var: Path) -> None:
    system = LocalSystem(environ=app_env, var=var)
    wanted = system.web_env("goals")
    looks_like_ours = [sys.executable, "-c", "import time; time.sleep(30)",
                       "services.goals.app:create_app()"]
    before = {k: v for k, v in wanted.items() if k != "WEB_HANDOVER_DIR"}
    moved = {**wanted, "BIND": "127.0.0.1:1"}
    procs = [subprocess.Popen(looks_like_ours, env=env) for env in (before, moved, wanted)]
    try:
        for proc in procs:  # until exec'd: before that /proc shows the parent's environment
            cmdline = Path(f"/proc/{proc.pid}/cmdline")
            wait_for(lambda: b"time.sleep(30)" in cmdline.read_bytes(),  # noqa: B023
                     timeout=10, interval=0.01, message="the stand-in to start")
        reasons = [system.restart_reason("goals", proc.pid) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert reasons == ["it was started before rolling reloads",
                       f"its address changes (127.0.0.1:1 -> {wanted['BIND']})", None]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _environ(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def test_a_restart_never_signals_a_pid_its_file_names_once_reused(
        app_env: dict[str, str], var: Path, runners: list[LocalSystem],
        capsys: pytest.CaptureFixture[str]) -> None:
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        (var / "run").mkdir(parents=True)
        (var / "run" / "goals-web.pid").write_text(f"{stranger.pid}\n")
        assert main(["restart", "goals"], environ=app_env, var=var) == 0
        assert stranger.poll() is None, "the stranger was signalled"
        out = capsys.readouterr().out
        assert "rolling reload" not in out
        started = runners[-1].live_pid("goals-web")
        assert started not in (None, stranger.pid)
        assert f"goals-web: started (pid {started})" in out
    finally:
        main(["stop"], environ=app_env, var=var)
        stranger.kill()
        stranger.wait()
