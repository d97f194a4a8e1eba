"""Run the whole Growth Diary backend on one machine, without containers.

    python3 -m deploy install            .venv + editable install with the test extras
                                         (skipped when up to date)
    python3 -m deploy run [SVC...]       all: PostgreSQL and RabbitMQ (installed and started
                                         if meant to be local and silent: deploy/backing.py),
                                         bootstrap the database, keys, migrate, start what
                                         is not running, the gateway, wait until ready.
                                         SVC: deploy that service alone (migrate, then start it,
                                         or roll it if it is running).
    python3 -m deploy restart [SVC...]   graceful rolling restart (web: a new master beside the
                                         old one, which is stopped once the new one is ready;
                                         worker: TERM and start again); default: every service
    python3 -m deploy stop [SVC...]      graceful stop (TERM, STOP_TIMEOUT s, then KILL);
                                         all: the gateway and the studio too, and PostgreSQL
                                         and RabbitMQ if `run` started them
    python3 -m deploy stop-studio        stop the data browser (`make studio`) alone
    python3 -m deploy status             what runs where, workers' health and backlog; exit 3
                                         if anything is down
    python3 -m deploy logs [SVC]         follow the logs

Everything lives under var/: run/*.pid, log/*.log, nginx/ (rendered gateway config),
prometheus/<svc>/ (gunicorn multiprocess metrics), keys/ (auth signing keys), mail/, and
run/<svc>-web.handover/ while a web process is being rolled.
Only processes named in var/run/*.pid are ever signalled, and only after checking that the
pid still runs the command we started (a pid can be reused after a crash).

Standard library only: `install` runs before .venv exists. Environment (also read from .env,
which never overrides the real environment; what results is what every process started here
gets): GATEWAY_PORT, <SVC>_PORT, <SVC>_WORKER_PORT, WEB_CONCURRENCY, AUTH_KEYS_DIR, MAIL_DIR,
READY_TIMEOUT (60), STOP_TIMEOUT (30), NGINX (path to the binary). Linux only (/proc).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TextIO

from deploy import render_nginx
from deploy.backing import BackingError, BackingServices
from shared.services import GATEWAY_PORT, SERVICES, port_of, worker_port_of

ROOT = Path(__file__).resolve().parent.parent
LOG_TAIL_LINES = 20


class DeployError(Exception):
    """A failure worded for the operator; the runner prints it and exits with `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# --- environment ---------------------------------------------------------------------------


_INLINE_COMMENT = re.compile(r"\s+#.*$")


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, read as python-dotenv reads them for the services: blanks, comments
    and `export ` skipped, quotes removed, ` # comment` after an unquoted value dropped."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            continue
        value = value.strip()
        closing = value.find(value[0], 1) if value[:1] in ("'", '"') else -1
        values[key] = value[1:closing] if closing > 0 else _INLINE_COMMENT.sub("", value)
    return values


def environment(root: Path, real: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The real environment, plus what .env adds (a variable set and non-empty wins)."""
    env = dict(real)
    for key, value in read_dotenv(root / ".env").items():
        if not env.get(key):
            env[key] = value
    return env


# --- processes, as /proc shows them --------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name (which may hold spaces): state, ppid, ..."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return text[text.rfind(")") + 2:].split()


def running(pid: int) -> bool:
    """The pid exists and is not a zombie."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if len(fields) > 1 and fields[1] == str(pid):
                found.add(int(entry.name))
    return found


def process_environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {key: value for key, _, value in pairs}


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on TCP `port` (any address, IPv4 or IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                cols = row.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                    inodes.add(cols[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    found = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    found.add(target[8:-1])
    return found


def listens_on(pid: int, port: int) -> bool:
    return bool(_listening_inodes(port) & _socket_inodes(pid))


def listeners(port: int) -> list[int]:
    """Every process holding a socket that listens on `port` (those we may look at)."""
    inodes = _listening_inodes(port)
    if not inodes:
        return []
    return sorted(int(p.name) for p in Path("/proc").iterdir()
                  if p.name.isdigit() and inodes & _socket_inodes(int(p.name)))


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Would a server fail to bind host:port? (SO_REUSEADDR, as gunicorn and nginx bind.)"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise DeployError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return False


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_status(url: str, timeout: float = 2.0) -> str:
    """The HTTP status `url` answers with, as text; "000" when nothing answers (as curl)."""
    try:
        with _NO_PROXY.open(url, timeout=timeout) as response:
            return str(response.status)
    except urllib.error.HTTPError as exc:
        return str(exc.code)
    except (OSError, http.client.HTTPException):
        return "000"


def http_json(url: str, timeout: float = 2.0) -> tuple[str, dict[str, object]]:
    """The status `url` answers with ("000": nothing answers) and its JSON body ({} if none)."""
    try:
        with _NO_PROXY.open(url, timeout=timeout) as response:
            status, raw = str(response.status), response.read()
    except urllib.error.HTTPError as exc:
        status, raw = str(exc.code), exc.read()
    except (OSError, http.client.HTTPException):
        return "000", {}
    try:
        body = json.loads(raw)
    except ValueError:
        return status, {}
    return status, body if isinstance(body, dict) else {}


def tail(path: Path, lines: int = LOG_TAIL_LINES, since: int = 0) -> str:
    """The last `lines` lines of `path`, of what was written past byte `since`."""
    try:
        with path.open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


_EXCEPTION_LINE = re.compile(r"^(?:\w+\.)*\w*(?:Error|Exception): .*")


def first_error(path: Path) -> str | None:
    """The first exception line logged since the last start: it names the cause, which
    gunicorn's own lines about halting can push out of the tail."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    since_start = text[text.rfind("\n=== "):].splitlines()
    return next((line for line in since_start if _EXCEPTION_LINE.match(line)), None)


# --- the system on this machine ------------------------------------------------------------


class LocalSystem:
    """The services' web and worker processes and the gateway, started from one checkout."""

    def __init__(self, root: Path = ROOT, *, environ: Mapping[str, str] | None = None,
                 var: Path | None = None, out: TextIO | None = None,
                 err: TextIO | None = None) -> None:
        self.root = root
        self.env = environment(root) if environ is None else dict(environ)
        self.env["PYTHONUNBUFFERED"] = "1"
        self.var = var or root / "var"
        self.run_dir, self.log_dir = self.var / "run", self.var / "log"
        self.nginx_dir, self.prom_dir = self.var / "nginx", self.var / "prometheus"
        self.venv = root / ".venv"
        self.python = self.venv / "bin" / "python"
        self.keys_dir = self._dir_setting("AUTH_KEYS_DIR", self.var / "keys")
        self.mail_dir = self._dir_setting("MAIL_DIR", self.var / "mail")
        self.env.update(AUTH_KEYS_DIR=str(self.keys_dir), MAIL_DIR=str(self.mail_dir))
        self.gateway_port = int(self.env.get("GATEWAY_PORT") or GATEWAY_PORT)
        self.ready_timeout = float(self.env.get("READY_TIMEOUT") or 60)
        self.stop_timeout = float(self.env.get("STOP_TIMEOUT") or 30)
        self.nginx = self.env.get("NGINX", "")
        self.out, self.err_out = out or sys.stdout, err or sys.stderr
        self.spawned: dict[str, subprocess.Popen[bytes]] = {}

    def _dir_setting(self, name: str, default: Path) -> Path:
        value = self.env.get(name, "")
        path = Path(value) if value else default
        return path if path.is_absolute() else self.root / path

    def shown(self, path: Path) -> str:
        """A path as the operator reads it: relative to the checkout when inside it."""
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def say(self, message: str) -> None:
        print(message, file=self.out, flush=True)

    def warn(self, message: str) -> None:
        print(f"deploy: {message}", file=self.err_out, flush=True)

    def port(self, svc: str) -> int:
        return port_of(svc, self.env)

    def worker_port(self, svc: str) -> int:
        return worker_port_of(svc, self.env)

    # --- pid files -------------------------------------------------------------------------

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def marker(self, name: str) -> str:
        """What the command line of the process we started as `name` always contains."""
        if name == "nginx":
            return str(self.nginx_dir / "nginx.conf")
        if name == "studio":  # the data browser, started by `python -m studio start`
            return "studio.app:create_app"
        svc, _, role = name.rpartition("-")
        return f"services.{svc}.app:" if role == "web" else f"services.{svc}.worker"

    def recorded_pid(self, name: str) -> int | None:
        try:
            digits = "".join(c for c in self.pid_file(name).read_text() if c.isdigit())
        except OSError:
            return None
        return int(digits) if digits else None

    def live_pid(self, name: str) -> int | None:
        """The pid in var/run/<name>.pid if it still runs what we started, else None."""
        pid = self.recorded_pid(name)
        return pid if pid is not None and self.is_ours(name, pid) else None

    def is_ours(self, name: str, pid: int) -> bool:
        """Does `pid` still run what we started as `name`?"""
        child = self.spawned.get(name)
        if child is not None and child.pid == pid:
            # Our own child: its pid cannot be reused before we reap it, and its command line
            # may not be readable yet in the instant after exec.
            return child.poll() is None
        return running(pid) and self.marker(name) in cmdline(pid)

    def record_pid(self, name: str, pid: int) -> None:
        """var/run/<name>.pid names `pid` (replaced whole: a reader never sees half a file)."""
        path = self.pid_file(name)
        partial = path.with_suffix(".pid.tmp")
        partial.write_text(f"{pid}\n")
        partial.replace(path)

    def spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> int:
        """Start `argv` in its own session (a forced stop takes its whole process group),
        output appended to var/log/<name>.log, pid in var/run/<name>.pid."""
        log = self.log_file(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with log.open("ab") as out:
            out.write(f"\n=== {stamp} starting: {' '.join(argv)}\n".encode())
            out.flush()
            proc = subprocess.Popen(argv, env=dict(env), cwd=self.root, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.spawned[name] = proc
        self.record_pid(name, proc.pid)
        return proc.pid

    def log_line(self, name: str, what: str) -> int:
        """A `=== <time> <what>` line in var/log/<name>.log, as `spawn` writes; returns where
        the log ended before it (what the process logs next comes after)."""
        log = self.log_file(name)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with log.open("ab") as out:
            end = out.tell()
            out.write(f"\n=== {stamp} {what}\n".encode())
        return end

    def stop(self, names: Iterable[str]) -> None:
        """TERM (nginx: QUIT, its graceful stop), wait STOP_TIMEOUT, then KILL the leftovers'
        process groups. Removes the pid files."""
        stopping: dict[str, int] = {}
        for name in names:
            pid = self.live_pid(name)
            if pid is None:
                stale = self.recorded_pid(name)
                if stale is not None and running(stale):
                    self.say(f"{name}: {self.shown(self.pid_file(name))} names pid {stale}, "
                             f"which now runs something else: left alone")
                self.pid_file(name).unlink(missing_ok=True)
                continue
            with contextlib.suppress(ProcessLookupError):  # it may just have exited
                os.kill(pid, signal.SIGQUIT if name == "nginx" else signal.SIGTERM)
            self.say(f"{name}: stopping (pid {pid})")
            stopping[name] = pid
        self.await_exit(stopping)
        for name in stopping:
            self.pid_file(name).unlink(missing_ok=True)

    def await_exit(self, signalled: Mapping[str, int]) -> None:
        """Wait STOP_TIMEOUT for each process told to stop (name -> pid), then KILL the
        process group of any still running what we started."""
        deadline = time.monotonic() + self.stop_timeout
        while any(self.is_ours(n, p) for n, p in signalled.items()):
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        for name, pid in signalled.items():
            if self.is_ours(name, pid):
                self.warn(f"{name}: still running after {self.stop_timeout:g}s, "
                          f"killing (pid {pid})")
                with contextlib.suppress(ProcessLookupError):
                    if os.getpgid(pid) == pid:  # its own session: the group is all ours
                        os.killpg(pid, signal.SIGKILL)
                    else:
                        os.kill(pid, signal.SIGKILL)

    # --- ports -----------------------------------------------------------------------------

    def claim_port(self, name: str, port: int, setting: str) -> None:
        """Fail unless `port` is free: another program on it would get our traffic."""
        if not port_in_use(port):
            return
        holders = [f"pid {pid}: {' '.join(cmdline(pid).split())[:80]}" for pid in listeners(port)]
        who = f" ({'; '.join(holders)})" if holders else ""
        raise DeployError(f"{name}: port {port} is already in use by another program{who}; "
                          f"stop it or set {setting} to a free port")

    def check_ports(self, services: Sequence[str], *, gateway: bool) -> None:
        """Before doing anything: every port we are about to listen on is ours or free."""
        wanted = {f"{svc.upper()}_PORT": self.port(svc) for svc in services}
        wanted |= {f"{svc.upper()}_WORKER_PORT": self.worker_port(svc) for svc in services
                   if self.worker_port(svc)}
        if gateway:
            wanted["GATEWAY_PORT"] = self.gateway_port
        by_port: dict[int, list[str]] = {}
        for setting, port in wanted.items():
            by_port.setdefault(port, []).append(setting)
        for port, settings in by_port.items():
            if len(settings) > 1:
                raise DeployError(f"{' and '.join(settings)} are both {port}")
        for svc in services:
            if self.live_pid(f"{svc}-web") is None:
                self.claim_port(f"{svc}-web", self.port(svc), f"{svc.upper()}_PORT")
            if self.live_pid(f"{svc}-worker") is None and self.worker_port(svc):
                self.claim_port(f"{svc}-worker", self.worker_port(svc),
                                f"{svc.upper()}_WORKER_PORT")
        if gateway and self.live_pid("nginx") is None:
            self.claim_port("gateway", self.gateway_port, "GATEWAY_PORT")

    # --- web processes ---------------------------------------------------------------------

    def web_env(self, svc: str) -> dict[str, str]:
        return {**self.env, "SERVICE": svc, "BIND": f"127.0.0.1:{self.port(svc)}",
                "PROMETHEUS_MULTIPROC_DIR": str(self.prom_dir / svc),
                "WEB_HANDOVER_DIR": str(self.handover_dir(svc))}

    def handover_dir(self, svc: str) -> Path:
        """Where a rolling reload hands the new master its environment and learns its pid
        and its workers' readiness (deploy/gunicorn.conf.py: pre_exec, post_worker_init)."""
        return self.run_dir / f"{svc}-web.handover"

    def start_web(self, svc: str) -> bool:
        """Start svc's gunicorn unless it runs; True when started (then `await_boot` it)."""
        name = f"{svc}-web"
        pid = self.live_pid(name)
        if pid is not None:
            self.say(f"{name}: already running (pid {pid})")
            return False
        port = self.port(svc)
        self.claim_port(name, port, f"{svc.upper()}_PORT")
        prom = self.prom_dir / svc
        shutil.rmtree(prom, ignore_errors=True)
        prom.mkdir(parents=True)
        shutil.rmtree(self.handover_dir(svc), ignore_errors=True)
        gunicorn = str(self.venv / "bin" / "gunicorn")
        config = str(self.root / "deploy" / "gunicorn.conf.py")
        pid = self.spawn(name, [gunicorn, "--config", config, f"services.{svc}.app:create_app()"],
                         self.web_env(svc))
        self.say(f"{name}: started (pid {pid}) on 127.0.0.1:{port}")
        return True

    def start_webs(self, services: Iterable[str]) -> None:
        self.await_boot([svc for svc in services if self.start_web(svc)])

    def boot_failure(self, name: str, what: str, since: int = 0) -> DeployError:
        """`what` went wrong, with the first error and the tail of what `name` logged (past
        byte `since` of its log)."""
        if self.live_pid(name) is None:
            self.pid_file(name).unlink(missing_ok=True)
        log = self.log_file(name)
        error = first_error(log)
        cause = f"\n  first error: {error}" if error else ""
        return DeployError(f"{name}: {what}{cause}\n--- last {LOG_TAIL_LINES} lines of "
                           f"{self.shown(log)} ---\n{tail(log, since=since)}")

    def await_boot(self, services: Sequence[str]) -> None:
        """Until each web answers healthz from a socket its own master holds; a master that
        exits (its app failed to import, the port was taken) is reported with its log."""
        pending = list(services)
        deadline = time.monotonic() + self.ready_timeout
        while pending:
            for svc in list(pending):
                name, port = f"{svc}-web", self.port(svc)
                pid = self.live_pid(name)
                if pid is None:
                    proc = self.spawned.get(name)
                    status = proc.poll() if proc else None
                    raise self.boot_failure(name, f"exited during start-up (status {status}): "
                                                  "it did not boot")
                healthy = http_status(f"http://127.0.0.1:{port}/{svc}/healthz", 1.0) == "200"
                if healthy and listens_on(pid, port):
                    pending.remove(svc)
            if not pending:
                return
            if time.monotonic() >= deadline:
                raise self.boot_failure(f"{pending[0]}-web", f"not answering healthz on its "
                                        f"own socket after {self.ready_timeout:g}s")
            time.sleep(0.1)

    # --- rolling reload: a new master beside the old one ----------------------------------
    #
    # gunicorn's USR2 makes the master fork and exec a new master on the current code, which
    # inherits the listening socket and starts its own workers while the old ones keep
    # serving. deploy/gunicorn.conf.py's hooks use the handover directory: pre_exec gives the
    # new master the environment in env.json (exec would otherwise keep the old master's)
    # and writes its pid to master.pid; each new worker asks its app for readyz in-process,
    # writes the answer to <pid>.ready, and accepts connections only once it is 200.

    _GUNICORN_OWN = frozenset({"GUNICORN_PID", "GUNICORN_FD", "LISTEN_PID", "LISTEN_FDS"})

    def restart_reason(self, svc: str, pid: int) -> str | None:
        """Why the running web `pid` cannot be rolled (then it is restarted), if it cannot:
        the new master inherits the listening socket, so a new address needs a fresh start,
        and a master started without the handover directory cannot pass on the settings."""
        started, wanted = process_environ(pid), self.web_env(svc)
        if not started:  # unreadable: the new master's environment is checked instead
            return None
        if started.get("WEB_HANDOVER_DIR") != wanted["WEB_HANDOVER_DIR"]:
            return "it was started before rolling reloads"
        if started.get("BIND") != wanted["BIND"]:
            return f"its address changes ({started.get('BIND')} -> {wanted['BIND']})"
        return None

    def changed_settings(self, pid: int, wanted: Mapping[str, str]) -> list[str]:
        """The settings `pid` started with that the new master gets changed, for the operator
        (the new master gets the whole environment; this names what .env and .env.example
        name, and what the runner sets itself, not the shell's own variables)."""
        keys = set(read_dotenv(self.root / ".env")) | set(read_dotenv(self.root / ".env.example"))
        keys |= {"SERVICE", "BIND", "PROMETHEUS_MULTIPROC_DIR", "AUTH_KEYS_DIR", "MAIL_DIR",
                 "WEB_HANDOVER_DIR"}
        keys |= {f"{s.upper()}_PORT" for s in SERVICES}
        started = process_environ(pid)
        return sorted(k for k in keys if started.get(k, "") != wanted.get(k, ""))

    def is_new_master(self, name: str, pid: int, old: int) -> bool:
        """Is `pid` a master that `old` exec'd on USR2 (gunicorn names the old one in its
        environment), running what we started as `name`?"""
        return (self.is_ours(name, pid)
                and process_environ(pid).get("GUNICORN_PID") == str(old))

    def exec_child(self, name: str, old: int) -> int | None:
        """A new master `old` has started, found among its children."""
        return next((pid for pid in children(old) if self.is_new_master(name, pid, old)), None)

    def handed_over_pid(self, handover: Path) -> int | None:
        try:
            text = (handover / "master.pid").read_text()
        except OSError:
            return None
        digits = "".join(c for c in text if c.isdigit())
        return int(digits) if digits else None

    def ready_workers(self, handover: Path,
                      master: int) -> tuple[dict[int, tuple[str, str]], int]:
        """What each live worker of `master` last had readyz answer (pid -> status and the
        start of the body; absent: not yet), and how many workers it wants (0 while none
        has said)."""
        answers, wanted = {}, 0
        for pid in children(master):
            try:
                first, _, body = (handover / f"{pid}.ready").read_text().partition("\n")
            except OSError:
                continue
            status, _, workers = first.partition(" ")
            answers[pid] = (status, body.strip())
            wanted = max(wanted, int(workers) if workers.strip().isdigit() else 1)
        return answers, wanted

    def reload_web(self, svc: str, old: int) -> None:
        """USR2, then wait until every worker of the new master answers readyz; then the pid
        file names the new master and the old one gets TERM (its workers finish their
        requests; STOP_TIMEOUT, then KILL). A new master that exits (its code does not
        import) or is not ready within READY_TIMEOUT is stopped if it runs, and reported
        with its log: the old master keeps serving the old version."""
        name = f"{svc}-web"
        stray = self.exec_child(name, old)
        if stray is not None:  # gunicorn ignores USR2 while a master it exec'd runs
            raise DeployError(f"{name}: pid {stray}, a master started by an earlier USR2, "
                              f"runs beside pid {old}: stop the one not wanted first")
        handover = self.handover_dir(svc)
        shutil.rmtree(handover, ignore_errors=True)
        handover.mkdir(parents=True, mode=0o700)
        wanted_env = self.web_env(svc)
        env_file = handover / "env.json"
        env_file.touch(mode=0o600)  # settings include passwords
        env_file.write_text(json.dumps(wanted_env))
        since = self.log_line(name, f"reloading: USR2 to pid {old}, a new master follows")
        changed = self.changed_settings(old, wanted_env)
        self.say(f"{name}: rolling reload (USR2 pid {old})"
                 + (f"; settings changed since it started: {', '.join(changed)}"
                    if changed else ""))
        new: int | None = None
        try:
            new = self.await_new_master(name, old, handover, wanted_env, since)
        except BaseException:  # a failure, or interrupted: one master is left, and recorded
            found = new or self.handed_over_pid(handover) or self.exec_child(name, old)
            if found is not None and self.is_new_master(name, found, old):
                if self.is_ours(name, old):
                    self.say(f"{name}: stopping the new master (pid {found}); "
                             f"pid {old} keeps serving")
                    os.kill(found, signal.SIGTERM)
                    self.await_exit({name: found})
                else:
                    self.record_pid(name, found)
            raise
        finally:
            shutil.rmtree(handover, ignore_errors=True)
        self.record_pid(name, new)
        self.say(f"{name}: new master (pid {new}) ready, stopping the old one (pid {old})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(old, signal.SIGTERM)
        self.await_exit({name: old})

    def await_new_master(self, name: str, old: int, handover: Path,
                         wanted_env: Mapping[str, str], since: int) -> int:
        """USR2 to `old`; the new master's pid, once all its workers answer readyz 200 and it
        runs with `wanted_env`; DeployError (with the log since byte `since`) when it cannot.

        USR2 is sent again each second until a new master is forked: gunicorn ignores it in
        a master that has not yet noticed that its own old master is gone (up to a second
        after a previous reload), and a second one while the first is handled."""
        deadline = time.monotonic() + self.ready_timeout
        new: int | None = None
        answers: dict[int, tuple[str, str]] = {}
        next_usr2 = time.monotonic()
        while True:
            if not self.is_ours(name, old):
                raise self.boot_failure(name, f"the old master (pid {old}) exited during the "
                                              "reload", since)
            pid = self.handed_over_pid(handover)
            if pid is None and time.monotonic() >= next_usr2:
                os.kill(old, signal.SIGUSR2)
                next_usr2 = time.monotonic() + 1.0
            if pid is not None and not running(pid):
                raise self.boot_failure(
                    name, f"the new master (pid {pid}) exited: the new version did not boot; "
                          f"pid {old} keeps serving the old one", since)
            if pid is not None and self.is_new_master(name, pid, old):
                new = pid
                answers, workers = self.ready_workers(handover, new)
                if workers and len(answers) >= workers and all(
                        status == "200" for status, _ in answers.values()):
                    break
            if time.monotonic() >= deadline:
                seen = ", ".join(f"pid {p}: {s}" for p, (s, _) in sorted(answers.items()))
                said = next((body for s, body in answers.values() if s != "200" and body), "")
                what = (f"no new master within {self.ready_timeout:g}s of USR2" if new is None
                        else f"the new master (pid {new}) is not ready after "
                             f"{self.ready_timeout:g}s (its workers' readyz: {seen or 'none yet'})")
                raise self.boot_failure(name, f"{what}; pid {old} keeps serving the old version"
                                        + (f"\n  readyz said: {said}" if said else ""), since)
            time.sleep(0.1)
        started = {k: v for k, v in process_environ(new).items() if k not in self._GUNICORN_OWN}
        differs = sorted(k for k in set(started) | set(wanted_env)
                         if started.get(k) != wanted_env.get(k))
        if differs:
            raise self.boot_failure(name, f"the new master (pid {new}) did not get the current "
                                          f"settings (differ: {', '.join(differs)})", since)
        return new

    # --- workers ---------------------------------------------------------------------------

    def start_worker(self, svc: str) -> None:
        name = f"{svc}-worker"
        pid = self.live_pid(name)
        if pid is not None:
            self.say(f"{name}: already running (pid {pid})")
            return
        # The worker keeps its metrics in-process: the multiprocess dir belongs to gunicorn.
        env = {k: v for k, v in self.env.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        # Under deploy/supervise.py, which starts it again if it dies; run by its path, as
        # it needs nothing but the standard library.
        supervisor = [str(self.python), str(self.root / "deploy" / "supervise.py"),
                      "--name", name, "--"]
        pid = self.spawn(name, [*supervisor, str(self.python), "-m", f"services.{svc}.worker"],
                         {**env, "SERVICE": svc})
        self.say(f"{name}: started (pid {pid})")

    def roll(self, svc: str) -> None:
        """Web: a rolling reload (or a fresh start when one cannot be done); worker: stop
        gracefully and start again (its batch in hand is acked or redelivered, so nothing is
        lost). A web that fails to reload leaves the old version serving and the worker
        untouched."""
        name = f"{svc}-web"
        pid = self.live_pid(name)
        if pid is not None and (why := self.restart_reason(svc, pid)):
            self.say(f"{name}: {why}: restarting it instead of a rolling reload")
            self.stop([name])
            pid = None
        if pid is None:
            self.start_webs([svc])
        else:
            self.reload_web(svc, pid)
        self.stop([f"{svc}-worker"])
        self.start_worker(svc)

    # --- gateway ---------------------------------------------------------------------------

    def apt_install(self, package: str) -> None:
        """Install a Debian package (as root; otherwise say how)."""
        if os.geteuid() != 0:
            raise DeployError(f"{package} is not installed; run as root or: "
                              f"sudo apt-get install -y {package}")
        self.say(f"installing {package} (apt-get)")
        apt_env = {**self.env, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq",
                                                     package]):
            if subprocess.run(argv, env=apt_env, stdout=subprocess.DEVNULL).returncode != 0:
                raise DeployError(f"{' '.join(argv)} failed")

    def ensure_chromium(self) -> None:
        """Debian's chromium, which the studio's browser test drives (tests/studio)."""
        if not shutil.which("chromium", path=self.env.get("PATH")):
            self.apt_install("chromium")

    def ensure_nginx(self) -> None:
        if not self.nginx:
            self.nginx = shutil.which("nginx", path=self.env.get("PATH")) or ""
            if not self.nginx and os.access("/usr/sbin/nginx", os.X_OK):
                self.nginx = "/usr/sbin/nginx"
        if self.nginx and os.access(self.nginx, os.X_OK):
            return
        self.apt_install("nginx-light")
        self.nginx = shutil.which("nginx", path=self.env.get("PATH")) or "/usr/sbin/nginx"

    def nginx_args(self) -> list[str]:
        return [self.nginx, "-p", str(self.nginx_dir), "-e", str(self.log_file("nginx-error")),
                "-c", str(self.nginx_dir / "nginx.conf")]

    def render_gateway(self) -> None:
        self.nginx_dir.mkdir(parents=True, exist_ok=True)
        text = render_nginx.render(render_nginx.local_values(self.var, self.env), "local")
        conf = self.nginx_dir / "nginx.conf"
        partial = conf.with_suffix(".conf.tmp")
        partial.write_text(text)
        partial.replace(conf)
        check = subprocess.run([*self.nginx_args(), "-t", "-q"], capture_output=True, text=True)
        if check.returncode != 0:
            raise DeployError(f"the rendered gateway config {self.shown(conf)} does not pass "
                              f"nginx -t:\n{check.stderr.strip()}")

    def start_gateway(self) -> None:
        self.ensure_nginx()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.render_gateway()
        pid = self.live_pid("nginx")
        if pid is not None:
            os.kill(pid, signal.SIGHUP)  # nginx's reload
            time.sleep(0.5)  # asynchronous: let the new workers take over before checking
            self.say(f"gateway: already running (pid {pid}), configuration reloaded")
            return
        self.pid_file("nginx").unlink(missing_ok=True)
        self.claim_port("gateway", self.gateway_port, "GATEWAY_PORT")
        # nginx daemonises and writes its own pid file (pid directive in the rendered config)
        started = subprocess.run(self.nginx_args(), capture_output=True, text=True)
        if started.returncode != 0:
            raise DeployError(f"gateway: nginx did not start:\n{started.stderr.strip()}")
        deadline = time.monotonic() + 5
        while (pid := self.live_pid("nginx")) is None or not listens_on(pid, self.gateway_port):
            if time.monotonic() >= deadline:
                raise DeployError(f"gateway: nginx is not listening on {self.gateway_port}\n"
                                  f"{tail(self.log_file('nginx-error'), 5)}")
            time.sleep(0.05)
        self.say(f"gateway: started (pid {pid})")

    # --- readiness -------------------------------------------------------------------------

    def wait_ready(self, services: Sequence[str]) -> None:
        """Until every /<svc>/readyz answers 200 through the gateway (direct when it is not
        running); a process that dies meanwhile fails at once, not at the deadline."""
        gateway = self.live_pid("nginx") is not None
        deadline = time.monotonic() + self.ready_timeout
        pending, last = list(services), {}
        while True:
            for svc in list(pending):
                base = (f"http://127.0.0.1:{self.gateway_port}" if gateway
                        else f"http://127.0.0.1:{self.port(svc)}")
                last[svc] = http_status(f"{base}/{svc}/readyz")
                worker = self.worker_port(svc)
                if worker and last[svc] == "200":  # and the worker is up (alive) too
                    code = http_status(f"http://127.0.0.1:{worker}/healthz")
                    last[svc] = "200" if code == "200" else f"200, worker healthz {code}"
                if last[svc] == "200":
                    pending.remove(svc)
            for svc in services:
                for name in (f"{svc}-web", f"{svc}-worker"):
                    if self.live_pid(name) is None or self.restarted(name):
                        self.show_failure(svc, "exited")
                        raise DeployError(f"{name} exited during start-up")
            if not pending:
                return
            if time.monotonic() >= deadline:
                for svc in pending:
                    self.show_failure(svc, f"readyz answered '{last[svc]}'")
                raise DeployError(f"not ready after {self.ready_timeout:g}s: {' '.join(pending)}")
            time.sleep(0.5)

    def restarted(self, name: str) -> bool:
        """Did the supervisor (deploy/supervise.py) restart `name` since it was started?"""
        if not name.endswith("-worker"):
            return False
        try:
            with self.log_file(name).open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - 65536))  # start-up is recent
                text = log.read().decode(errors="replace")
        except OSError:
            return False
        return '"message": "exited, restarting"' in text[text.rfind("\n=== "):]

    def show_failure(self, svc: str, why: str) -> None:
        direct = f"http://127.0.0.1:{self.port(svc)}/{svc}/readyz"
        self.warn(f"{svc}: {why} (http://127.0.0.1:{self.gateway_port}/{svc}/readyz)")
        self.warn(f"{svc}: directly, {direct} answers '{http_status(direct)}'")
        for name in (f"{svc}-web", f"{svc}-worker"):
            print(f"--- tail of {self.shown(self.log_file(name))} ---\n"
                  f"{tail(self.log_file(name))}", file=self.err_out)
        print(f"--- tail of {self.shown(self.log_file('nginx-error'))} ---\n"
              f"{tail(self.log_file('nginx-error'), 5)}", file=self.err_out, flush=True)

    def print_table(self) -> None:
        gw = f"http://127.0.0.1:{self.gateway_port}"
        logs = self.shown(self.log_dir)
        self.say("")
        self.say("growth diary is running")
        self.say(f"  {'gateway':<9} {gw}   (JSON access log: {logs}/nginx-access.log)")
        self.say(f"  {'service':<9} {'direct':<24} {'docs':<34} {'web':<8} {'worker':<8} logs")
        for svc in SERVICES:
            web = self.live_pid(f"{svc}-web") or "-"
            worker = self.live_pid(f"{svc}-worker") or "-"
            self.say(f"  {svc:<9} {f'http://127.0.0.1:{self.port(svc)}':<24} "
                     f"{f'{gw}/{svc}/docs':<34} {web!s:<8} {worker!s:<8} "
                     f"{logs}/{svc}-{{web,worker}}.log")
        self.say(f"  {'metrics':<9} http://127.0.0.1:<port>/metrics "
                 "(direct only, not via the gateway)")
        workers = ", ".join(f"{svc} {self.worker_port(svc)}" for svc in SERVICES)
        self.say(f"  {'workers':<9} health on http://127.0.0.1:<port>/{{healthz,readyz,metrics}}"
                 f" ({workers})")
        self.say(f"  {'mail':<9} {self.shown(self.mail_dir)}/   (outgoing mail is written here)")
        self.say(f"  {'keys':<9} {self.shown(self.keys_dir)}/")
        self.say(f"  {'stop':<9} make stop   (status: make status, logs: make logs)")

    # --- steps -----------------------------------------------------------------------------

    def install(self) -> None:
        """.venv with the project installed editable; skipped while newer than pyproject."""
        stamp, pyproject = self.venv / ".installed", self.root / "pyproject.toml"
        if not self.python.exists():
            self.say("creating virtualenv .venv")
            self._run([sys.executable, "-m", "venv", str(self.venv)], "creating .venv")
        if stamp.exists() and stamp.stat().st_mtime > pyproject.stat().st_mtime:
            return
        self.say("installing growth-diary into .venv (pip install -e '.[test]')")
        self._run([str(self.python), "-m", "pip", "install", "--quiet", "-e",
                   f"{self.root}[test]"], "pip install")
        stamp.touch()

    def _run(self, argv: Sequence[str], what: str) -> None:
        if subprocess.run(argv, env=self.env, cwd=self.root).returncode != 0:
            raise DeployError(f"{what} failed ({' '.join(argv)}); stopping here")

    def prepare(self) -> None:
        for path in (self.run_dir, self.log_dir, self.nginx_dir, self.prom_dir, self.mail_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.install()
        self.ensure_nginx()
        try:
            self.backing().ensure()
        except BackingError as exc:
            raise DeployError(str(exc)) from None
        self.say("database: bootstrap")
        self._run([str(self.python), "-m", "shared.bootstrap"], "database bootstrap")

    def ensure_keys(self) -> None:
        self.keys_dir.mkdir(parents=True, exist_ok=True)
        self.keys_dir.chmod(0o700)
        if not any(self.keys_dir.glob("*.pem")):
            self.say(f"auth: generating a signing key in {self.shown(self.keys_dir)}")
            self._run([str(self.python), "-m", "shared.keys", "generate"], "key generation")

    def migrate(self, services: Iterable[str]) -> None:
        for svc in services:
            self.say(f"{svc}: migrate")
            self._run([str(self.python), "-m", "shared.migrate", svc, "upgrade", "head"],
                      f"{svc}: migration")

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """One run/restart/stop at a time per checkout (two would race on the pid files)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.run_dir / "deploy.lock").open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.say("waiting for another run/restart/stop of this checkout to finish")
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    # --- commands --------------------------------------------------------------------------

    def run(self, targets: Sequence[str]) -> int:
        self.check_ports(targets or SERVICES, gateway=True)
        self.prepare()
        if not targets:
            self.ensure_keys()
            self.migrate(SERVICES)
            self.start_all()
            self.print_table()
            return 0
        for svc in targets:  # deploy the named services alone: migrate, then start or roll
            if svc == "auth":
                self.ensure_keys()
            self.migrate([svc])
            self.roll(svc)
        self.start_gateway()
        self.wait_ready(targets)
        self.say(f"deployed: {' '.join(targets)}")
        return 0

    def start_all(self) -> None:
        """Every web and worker not running yet, then the gateway; returns once all are ready."""
        booting = [svc for svc in SERVICES if self.start_web(svc)]
        for svc in SERVICES:
            self.start_worker(svc)
        self.await_boot(booting)
        self.start_gateway()
        self.say(f"waiting for readiness (up to {self.ready_timeout:g}s)")
        self.wait_ready(SERVICES)

    def restart(self, targets: Sequence[str]) -> int:
        services = targets or SERVICES
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for svc in services:
            self.roll(svc)
        self.wait_ready(services)
        self.say(f"restarted: {' '.join(services)}")
        return 0

    def backing(self) -> BackingServices:
        return BackingServices(self.env, self.run_dir, self.say)

    def stop_all(self, targets: Sequence[str]) -> int:
        names = [] if targets else ["nginx", "studio"]
        names += [f"{svc}-{role}" for svc in targets or SERVICES for role in ("web", "worker")]
        self.stop(names)
        if not targets:
            try:
                self.backing().stop()
            except BackingError as exc:
                raise DeployError(str(exc)) from None
        self.say("stopped")
        return 0

    def stop_studio(self) -> int:
        if self.live_pid("studio") is None and self.recorded_pid("studio") is None:
            self.say("studio: not running")
        self.stop(["studio"])
        return 0

    def status(self) -> int:
        down = False
        pid = self.live_pid("nginx")
        if pid is not None:
            self.say(f"{'gateway':<16} running  pid {pid:<8} http://127.0.0.1:{self.gateway_port}")
        else:
            self.say(f"{'gateway':<16} stopped")
            down = True
        for svc in SERVICES:
            for name in (f"{svc}-web", f"{svc}-worker"):
                pid = self.live_pid(name)
                if pid is None:
                    self.say(f"{name:<16} stopped")
                    down = True
                elif name.endswith("-web"):
                    direct = f"http://127.0.0.1:{self.port(svc)}"
                    code = http_status(f"{direct}/{svc}/readyz")
                    self.say(f"{name:<16} running  pid {pid:<8} {direct}  readyz {code}")
                    down = down or code != "200"
                else:
                    health = f"http://127.0.0.1:{self.worker_port(svc)}"
                    code, body = http_json(f"{health}/readyz")
                    self.say(f"{name:<16} running  pid {pid:<8} {health}  readyz {code}"
                             f"{self.worker_summary(body)}")
                    down = down or code != "200"
        return 3 if down else 0

    @staticmethod
    def worker_summary(ready: Mapping[str, object]) -> str:
        """What a worker's readyz body says, in a few words: backlog, stalls, outages."""
        parts = []
        backlog = ready.get("backlog")
        if isinstance(backlog, dict):
            parts += [f"{k.replace('_', ' ')} {v:g}" for k, v in backlog.items()
                      if isinstance(v, int | float)]
        for key in ("stalled", "not_connected"):
            value = ready.get(key)
            if value:
                parts.append(f"{key.replace('_', ' ')}: {value}")
        return f"  ({'; '.join(parts)})" if parts else ""

    def logs(self, targets: Sequence[str]) -> int:
        ours = [self.log_file(f"{svc}-{role}") for svc in targets or SERVICES
                for role in ("web", "worker")]
        files = ours if targets else sorted(self.log_dir.glob("*.log")) or ours
        os.execvp("tail", ["tail", "-n", "50", "-F", *map(str, files)])


def usage() -> str:
    return (__doc__ or "").split("\n\n")[1]


def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None,
         var: Path | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command, targets = (args[0], args[1:]) if args else ("help", [])
    system = LocalSystem(environ=environ, var=var)
    unknown = [svc for svc in targets if svc not in SERVICES]
    if unknown and command != "help":
        system.warn(f"unknown service '{unknown[0]}' (one of: {' '.join(SERVICES)})")
        return 2
    locked: dict[str, Callable[[], int]] = {
        "run": lambda: system.run(targets),
        "start": lambda: system.run(targets),
        "restart": lambda: system.restart(targets),
        "stop": lambda: system.stop_all(targets),
        "stop-studio": lambda: system.stop_studio(),
    }
    try:
        if command in locked:
            with system.exclusive():
                return locked[command]()
        if command == "install":  # everything the system and its tests need on this machine
            system.install()
            system.ensure_nginx()
            system.ensure_chromium()
            return 0
        if command == "status":
            return system.status()
        if command == "logs":
            return system.logs(targets)
        if command == "render-nginx":
            system.ensure_nginx()
            system.render_gateway()
            system.say(f"rendered {system.shown(system.nginx_dir / 'nginx.conf')} (nginx -t ok)")
            return 0
        if command in ("help", "-h", "--help"):
            print(usage())
            return 0
        system.warn(f"unknown command '{command}'")
        print(usage(), file=sys.stderr)
        return 2
    except DeployError as failure:
        system.warn(str(failure))
        return failure.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
