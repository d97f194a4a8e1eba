"""PostgreSQL and RabbitMQ for a local run: used where they answer; installed and started
when they are meant to be on this machine and nothing answers.

- Each is found from its URL (`DATABASE_ADMIN_URL`, `AMQP_URL`; localhost by default) and
  asked in its own protocol, not just for an open port: PostgreSQL for an SSLRequest
  answer, RabbitMQ for the AMQP greeting.
- Not answering on this machine: installed from the distribution's packages if missing
  (apt-get; as root), started without systemd (`pg_ctlcluster --skip-systemctl-redirect`,
  `rabbitmq-server -detached`, as `.ci/run` does), waited for.
- Not answering elsewhere: nothing is installed; the error names the setting to check.
- `var/run/<name>.started` records what the runner started itself: `make stop` stops only
  those, and says which it leaves running.

A PostgreSQL the runner installed itself gets one change: the admin URL has no password, so
the `postgres` role may connect from the loopback without one (a line at the top of its
pg_hba.conf, marked as ours). Standard library only, as the runner is.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_ADMIN_URL = "postgresql://postgres@localhost:5432/postgres"
DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672//"
SSL_REQUEST = struct.pack("!ii", 8, 80877103)
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
HBA_MARK = "# growth-diary: make run installed this PostgreSQL; its admin URL has no password"


class BackingError(Exception):
    """Worded for the operator: what does not answer, and what to check."""


def is_local(host: str) -> bool:
    if host in ("", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ask(host: str, port: int, hello: bytes, timeout: float) -> bytes:
    try:
        with socket.create_connection((host or "localhost", port), timeout=timeout) as sock:
            sock.sendall(hello)
            return sock.recv(8)
    except OSError:
        return b""


class Backing:
    """One backing service as the runner sees it."""

    name: str
    setting: str
    marker: str
    packages: tuple[str, ...]
    probe_command: str  # on PATH once installed

    def __init__(self, url: str, env: Mapping[str, str],
                 run: Callable[..., subprocess.CompletedProcess[bytes]]) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "localhost", parts.port or self.default_port
        self.env, self.run = env, run

    default_port = 0

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def which(self, command: str) -> str | None:
        return shutil.which(command, path=self.env.get("PATH"))

    def installed(self) -> bool:
        return self.which(self.probe_command) is not None

    def answers(self, timeout: float = 2.0) -> bool:
        raise NotImplementedError

    def start(self) -> str:
        """Start it; returns what to record, for `stop`."""
        raise NotImplementedError

    def stop(self, recorded: str) -> None:
        raise NotImplementedError

    def after_install(self) -> None:
        """What a fresh install needs before the runner can use it."""

    def command(self, *argv: str) -> None:
        result = self.run(list(argv), env=dict(self.env), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE)
        if result.returncode != 0:
            err = (result.stderr or b"").decode(errors="replace").strip().splitlines()[-3:]
            raise BackingError(f"{' '.join(argv)} failed: {' '.join(err) or result.returncode}")


class PostgreSQL(Backing):
    name, setting, marker = "PostgreSQL", "DATABASE_ADMIN_URL", "postgresql"
    packages, probe_command, default_port = ("postgresql",), "pg_ctlcluster", 5432

    def answers(self, timeout: float = 2.0) -> bool:
        return _ask(self.host, self.port, SSL_REQUEST, timeout)[:1] in (b"S", b"N")

    def cluster(self) -> tuple[str, str]:
        """(version, name) of the cluster configured on our port (Debian's pg_lsclusters)."""
        listed = self.run(["pg_lsclusters", "--no-header"], env=dict(self.env),
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        for line in (listed.stdout or b"").decode().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2] == str(self.port):
                return fields[0], fields[1]
        raise BackingError(f"no PostgreSQL cluster is set up on port {self.port} "
                           f"(pg_lsclusters); create one (pg_createcluster) or set "
                           f"{self.setting}")

    def start(self) -> str:
        version, name = self.cluster()
        self.command("pg_ctlcluster", "--skip-systemctl-redirect", version, name, "start")
        return f"{version} {name}"

    def stop(self, recorded: str) -> None:
        version, _, name = recorded.partition(" ")
        self.command("pg_ctlcluster", "--skip-systemctl-redirect", version, name, "stop")

    def after_install(self) -> None:
        version, name = self.cluster()
        hba = Path(self.env.get("PG_CONF_ROOT", "/etc/postgresql")) / version / name / \
            "pg_hba.conf"
        text = hba.read_text()
        if HBA_MARK not in text:
            hba.write_text(f"{HBA_MARK}\nhost all postgres 127.0.0.1/32 trust\n"
                           f"host all postgres ::1/128 trust\n{text}")


class RabbitMQ(Backing):
    name, setting, marker = "RabbitMQ", "AMQP_URL", "rabbitmq"
    packages, probe_command, default_port = ("rabbitmq-server",), "rabbitmq-server", 5672

    def answers(self, timeout: float = 2.0) -> bool:
        return _ask(self.host, self.port, AMQP_HEADER, timeout)[:1] == b"\x01"

    def start(self) -> str:
        self.command("rabbitmq-server", "-detached")
        return "detached"

    def stop(self, recorded: str) -> None:
        self.command("rabbitmqctl", "stop")


class BackingServices:
    def __init__(self, env: Mapping[str, str], run_dir: Path, say: Callable[[str], None], *,
                 run: Callable[..., subprocess.CompletedProcess[bytes]] = subprocess.run,
                 timeout: float | None = None) -> None:
        self.env, self.run_dir, self.say, self.run = env, run_dir, say, run
        self.timeout = timeout or float(env.get("BACKING_TIMEOUT") or 90)
        self.each: list[Backing] = [
            PostgreSQL(env.get("DATABASE_ADMIN_URL") or DEFAULT_ADMIN_URL, env, run),
            RabbitMQ(env.get("AMQP_URL") or DEFAULT_AMQP_URL, env, run),
        ]

    def marker(self, backing: Backing) -> Path:
        return self.run_dir / f"{backing.marker}.started"

    def ensure(self) -> None:
        """Every backing service answers, or an error says which does not and why."""
        for backing in self.each:
            if backing.answers():
                continue
            if not is_local(backing.host):
                raise BackingError(
                    f"{backing.name} at {backing.where} does not answer; it is not on this "
                    f"machine, so nothing was installed or started: start it, or point "
                    f"{backing.setting} at one that runs")
            fresh = not backing.installed()
            if fresh:
                self.install(backing)
            self.say(f"{backing.name}: nothing answers at {backing.where}: starting it")
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.marker(backing).write_text(backing.start() + "\n")
            self.wait(backing)
            if fresh:
                backing.after_install()
                self.restart_after_install(backing)

    def install(self, backing: Backing) -> None:
        if os.geteuid() != 0 and not self.env.get("BACKING_INSTALL_AS_USER"):
            raise BackingError(f"{backing.name} is not installed and nothing answers at "
                               f"{backing.where}; run as root, or: sudo apt-get install -y "
                               f"{' '.join(backing.packages)}")
        self.say(f"{backing.name}: not installed: installing {' '.join(backing.packages)} "
                 "(apt-get)")
        apt_env = {**self.env, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (["apt-get", "update", "-qq"],
                     ["apt-get", "install", "-y", "-qq", *backing.packages]):
            if self.run(argv, env=apt_env, stdout=subprocess.DEVNULL).returncode != 0:
                raise BackingError(f"{' '.join(argv)} failed")
        if not backing.installed():
            raise BackingError(f"{backing.name}: installed, but {backing.probe_command} is "
                               "still not on PATH")

    def restart_after_install(self, backing: Backing) -> None:
        if isinstance(backing, PostgreSQL):  # pg_hba.conf changed: reload it
            version, name = backing.cluster()
            backing.command("pg_ctlcluster", "--skip-systemctl-redirect", version, name,
                            "reload")

    def wait(self, backing: Backing) -> None:
        deadline = time.monotonic() + self.timeout
        while not backing.answers(timeout=1.0):
            if time.monotonic() >= deadline:
                raise BackingError(f"{backing.name} was started but does not answer at "
                                   f"{backing.where} after {self.timeout:g}s")
            time.sleep(0.5)
        self.say(f"{backing.name}: up at {backing.where}")

    def stop(self) -> None:
        """Stop what the runner started itself; say what it leaves running."""
        left = []
        for backing in self.each:
            marker = self.marker(backing)
            if not marker.exists():
                left.append(backing.name)
                continue
            self.say(f"{backing.name}: stopping (make run started it)")
            try:
                backing.stop(marker.read_text().strip())
            finally:
                marker.unlink(missing_ok=True)
        if left:
            self.say(f"{' and '.join(left)}: left running (not started by make run)")
