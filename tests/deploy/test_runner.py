"""The local runner's own rules, without PostgreSQL or RabbitMQ: which processes it may signal,
a port another program holds, a web process that does not boot."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local import DeployError, LocalSystem, environment, main


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """Some other program, as a pid file can come to name once our process is gone."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_pid_file_naming_a_reused_pid_is_never_signalled(
        var: Path, environ: dict[str, str], stranger: subprocess.Popen[bytes],
        capsys: pytest.CaptureFixture[str]) -> None:
    run = var / "run"
    run.mkdir(parents=True)
    for name in ("nginx", "goals-web", "goals-worker"):
        (run / f"{name}.pid").write_text(f"{stranger.pid}\n")

    assert main(["stop"], environ=environ, var=var) == 0
    assert main(["status"], environ=environ, var=var) == 3

    assert stranger.poll() is None, "the stranger was signalled"
    assert not list(run.glob("*.pid"))
    out = capsys.readouterr().out
    assert f"names pid {stranger.pid}, which now runs something else: left alone" in out
    assert "stopping" not in out
    assert "goals-worker     stopped" in out


def test_stop_terminates_the_process_its_pid_file_names_when_it_is_ours(
        var: Path, environ: dict[str, str]) -> None:
    ours = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                             "services.goals.worker"], start_new_session=True)
    try:
        (var / "run").mkdir(parents=True)
        (var / "run" / "goals-worker.pid").write_text(f"{ours.pid}\n")
        assert main(["stop", "goals"], environ=environ, var=var) == 0
        assert ours.wait(5) == -signal.SIGTERM
        assert not (var / "run" / "goals-worker.pid").exists()
    finally:
        ours.kill()
        ours.wait()


def test_a_port_taken_by_another_program_is_an_error_not_a_deploy(
        var: Path, environ: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        environ["GOALS_PORT"] = str(port)

        assert main(["run", "goals"], environ=environ, var=var) == 1

    captured = capsys.readouterr()
    assert (f"goals-web: port {port} is already in use by another program (pid {os.getpid()}"
            in captured.err)
    assert "set GOALS_PORT to a free port" in captured.err
    assert "deployed" not in captured.out
    assert not (var / "run" / "goals-web.pid").exists()


def test_a_web_process_that_fails_to_boot_is_reported_with_its_log_tail(
        tmp_path: Path, var: Path, environ: dict[str, str]) -> None:
    # gunicorn's own --pythonpath puts an app that cannot import ahead of the real one.
    broken = tmp_path / "broken"
    (broken / "services" / "goals").mkdir(parents=True)
    (broken / "services" / "__init__.py").touch()
    (broken / "services" / "goals" / "__init__.py").touch()
    (broken / "services" / "goals" / "app.py").write_text(textwrap.dedent("""\
        raise ImportError("simulated: the goals app does not import")
    """))
    environ.update(GUNICORN_CMD_ARGS=f"--pythonpath {broken}", WEB_CONCURRENCY="2")
    system = LocalSystem(environ=environ, var=var)

    with pytest.raises(DeployError) as failure:
        system.start_webs(["goals"])

    report = str(failure.value)
    assert report.startswith("goals-web: exited during start-up")
    assert "first error: ImportError: simulated: the goals app does not import" in report
    assert "--- last 20 lines of" in report
    assert len(report.split("--- last 20 lines of", 1)[1].splitlines()) <= 21
    assert system.live_pid("goals-web") is None
    assert not (var / "run" / "goals-web.pid").exists()


def test_dotenv_fills_in_what_the_real_environment_leaves_unset(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(textwrap.dedent("""\
        # a comment
        export LOG_LEVEL=DEBUG
        GOALS_PORT="9102"  # quoted
        MAIL_DIR='var/else where'
        WEB_CONCURRENCY=3
        WEB_THREADS=8 # unquoted, then a comment
        not a setting
    """))
    env = environment(tmp_path, {"WEB_CONCURRENCY": "1", "MAIL_DIR": ""})
    assert env["LOG_LEVEL"] == "DEBUG"
    assert env["GOALS_PORT"] == "9102"
    assert env["MAIL_DIR"] == "var/else where"
    assert env["WEB_THREADS"] == "8"
    assert env["WEB_CONCURRENCY"] == "1"
    assert "not a setting" not in "".join(env)
