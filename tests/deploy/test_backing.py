"""deploy/backing.py: PostgreSQL and RabbitMQ found where they answer; meant to be local and
silent, installed (apt-get) and started without systemd; elsewhere, an error naming the
setting. Stand-in commands on PATH (apt-get, pg_lsclusters, pg_ctlcluster) record what they
are asked and start a listener that answers PostgreSQL's SSLRequest, so nothing real is
installed, started or stopped."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.backing import HBA_MARK, BackingError, BackingServices, PostgreSQL
from tests.helpers import wait_for

LISTENER = textwrap.dedent("""
    import socket, sys
    server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    while True:
        conn, _ = server.accept()
        with conn:
            conn.recv(8)
            conn.sendall(bytes.fromhex(sys.argv[2]))
""")

PG_LSCLUSTERS = """#!/bin/sh
echo "15 main $FAKE_PG_PORT down postgres /var/lib/postgresql/15/main log"
"""

PG_CTLCLUSTER = """#!/bin/sh
echo "pg_ctlcluster $*" >> "$FAKE_DIR/calls"
case "$4" in
  start) python3 "$FAKE_DIR/listener.py" "$FAKE_PG_PORT" 4e >/dev/null 2>&1 &
         echo $! > "$FAKE_DIR/pg.pid" ;;
  stop) kill "$(cat "$FAKE_DIR/pg.pid")" ;;
esac
"""

APT_GET = """#!/bin/sh
echo "apt-get $*" >> "$FAKE_DIR/calls"
if [ "$1" = install ]; then cp "$FAKE_DIR/pkg/"* "$FAKE_DIR/bin/"; fi
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


class Machine:
    """A PATH with stand-ins; PostgreSQL 'installed' or only in the package archive."""

    def __init__(self, root: Path, *, installed: bool) -> None:
        self.dir, self.bin, self.pkg = root, root / "bin", root / "pkg"
        tools = root / "tools"  # the PATH holds these alone: never a real pg_ctlcluster
        for folder in (self.bin, self.pkg, tools):
            folder.mkdir()
        for tool in ("sh", "cp", "cat"):
            (tools / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")
        (tools / "python3").symlink_to(sys.executable)
        (root / "listener.py").write_text(LISTENER)
        script(self.bin / "apt-get", APT_GET)
        for name, text in (("pg_lsclusters", PG_LSCLUSTERS), ("pg_ctlcluster", PG_CTLCLUSTER)):
            script((self.bin if installed else self.pkg) / name, text)
        self.pg_port, self.mq_port = free_port(), free_port()
        self.broker = subprocess.Popen([sys.executable, str(root / "listener.py"),
                                        str(self.mq_port), "01"])
        hba = root / "etc" / "15" / "main" / "pg_hba.conf"
        hba.parent.mkdir(parents=True)
        hba.write_text("host all all 127.0.0.1/32 scram-sha-256\n")
        self.hba = hba
        self.env = {
            "PATH": f"{self.bin}:{tools}", "FAKE_DIR": str(root),
            "FAKE_PG_PORT": str(self.pg_port), "PG_CONF_ROOT": str(root / "etc"),
            "DATABASE_ADMIN_URL": f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres",
            # A broker that answers (the AMQP greeting's first byte): to be left alone.
            "AMQP_URL": f"amqp://guest:guest@127.0.0.1:{self.mq_port}//",
        }
        self.said: list[str] = []

    def services(self, **env: str) -> BackingServices:
        return BackingServices({**self.env, **env}, self.dir / "run", self.said.append,
                               timeout=10)

    def calls(self) -> list[str]:
        path = self.dir / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def close(self) -> None:
        self.broker.kill()
        self.broker.wait(10)
        pid = self.dir / "pg.pid"
        if pid.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid.read_text()), signal.SIGTERM)


@pytest.fixture
def machine(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Machine]:
    m = Machine(tmp_path, installed=request.param)
    wait_for(lambda: m.services().each[1].answers(timeout=0.5), message="the stand-in broker")
    yield m
    m.close()


@pytest.mark.parametrize("machine", [False], indirect=True)
def test_a_silent_service_elsewhere_is_an_error_naming_its_setting_and_nothing_is_installed(
        machine: Machine) -> None:
    backing = machine.services(DATABASE_ADMIN_URL="postgresql://postgres@db.invalid:5432/x")
    with pytest.raises(BackingError, match="db.invalid:5432 does not answer; it is not on "
                                           "this machine.*DATABASE_ADMIN_URL"):
        backing.ensure()
    assert machine.calls() == []


@pytest.mark.parametrize("machine", [True], indirect=True)
def test_a_silent_local_service_is_started_and_only_what_was_started_is_stopped(
        machine: Machine) -> None:
    backing = machine.services()
    pg = backing.each[0]
    assert isinstance(pg, PostgreSQL) and not pg.answers()
    backing.ensure()
    assert pg.answers()
    assert machine.calls() == ["pg_ctlcluster --skip-systemctl-redirect 15 main start"]
    assert backing.marker(pg).read_text() == "15 main\n"
    backing.ensure()  # answering now: nothing more is done
    assert len(machine.calls()) == 1

    backing.stop()
    assert machine.calls()[-1] == "pg_ctlcluster --skip-systemctl-redirect 15 main stop"
    wait_for(lambda: not pg.answers(timeout=0.5), message="the stand-in stopped")
    assert not backing.marker(pg).exists()
    assert "RabbitMQ: left running (not started by make run)" in machine.said


@pytest.mark.parametrize("machine", [False], indirect=True)
def test_a_missing_local_service_is_installed_and_its_admin_allowed_in(
        machine: Machine) -> None:
    if os.geteuid() != 0:
        pytest.skip("installing is for root")
    machine.services().ensure()
    assert machine.calls() == [
        "apt-get update -qq", "apt-get install -y -qq postgresql",
        "pg_ctlcluster --skip-systemctl-redirect 15 main start",
        "pg_ctlcluster --skip-systemctl-redirect 15 main reload"]
    lines = machine.hba.read_text().splitlines()
    assert lines[:3] == [HBA_MARK, "host all postgres 127.0.0.1/32 trust",
                         "host all postgres ::1/128 trust"]
    assert lines[3] == "host all all 127.0.0.1/32 scram-sha-256", "the rest is kept"
    assert any("installing postgresql" in line for line in machine.said)
