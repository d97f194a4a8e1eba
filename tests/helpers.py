"""Test helpers: waiting for effects (never bare sleeps), processes, a cuttable TCP proxy."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kombu import Connection

from shared import bus
from shared.consumer import Delivery, EventConsumer, Handler
from shared.db import Database
from shared.events import Event, new_event
from shared.ids import new_id

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable


def wait_for(
    predicate: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.02,
    message: str = "condition",
) -> T:
    """Poll until `predicate()` is truthy; fail with `message` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def queue_depth(amqp_url: str, queue: str) -> int:
    """Messages ready in `queue` (raises if it is not declared)."""
    with Connection(amqp_url) as conn:
        return int(conn.channel().queue_declare(queue, passive=True).message_count)


def queue_exists(amqp_url: str, queue: str) -> bool:
    try:
        queue_depth(amqp_url, queue)
        return True
    except Exception:  # noqa: BLE001 - not declared (yet)
        return False


def new_user_id() -> str:
    return new_id()


def event(type_: str, **data: Any) -> Event:
    return new_event(type_, data, source="/tests")


def apply_events(consumer: EventConsumer, *events: Event) -> list[Delivery]:
    """Apply events the way the consumer applies a delivered batch (no broker involved)."""
    deliveries = [Delivery(message=None, event=e) for e in events]  # type: ignore[arg-type]
    consumer.apply(deliveries)
    return deliveries


def make_consumer(settings: Any, db: Database, handlers: dict[str, Handler]) -> EventConsumer:
    return EventConsumer(settings, db, handlers)


class ServiceProcess:
    """A real service process (worker or web) started by a test, stopped by it."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.args, self.env, self.log_path = args, env, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(self.args, env=self.env, stdout=log, stderr=log,
                                     cwd=ROOT, start_new_session=True)
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


LOGS = Path(os.environ.get("TEST_LOG_DIR", "var/log/tests"))


def start_worker(service: str, env: dict[str, str], *, amqp_url: str,
                 log_name: str | None = None) -> ServiceProcess:
    """`python -m services.<service>.worker` as deployed, once it is consuming: its
    dead-letter queue, declared after its queue and bindings, exists (a publisher may go
    ahead). Fails with the worker's log if it died on the way."""
    proc = ServiceProcess([PYTHON, "-m", f"services.{service}.worker"], env,
                          LOGS / (log_name or f"{service}-worker.log")).start()
    ready = bus.Names(env.get("EVENT_NAMESPACE", "growth")).dead_queue(service)
    wait_for(lambda: queue_exists(amqp_url, ready) or not proc.alive(), timeout=30,
             message=f"{service} worker ready")
    assert proc.alive(), proc.log_tail()
    return proc


class TcpProxy:
    """A loopback TCP proxy the test can cut: the broker 'goes down' for whoever uses it."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            src.close()  # each socket is the source of exactly one pipe

    def cut(self) -> None:
        """Refuse new connections and drop the live ones."""
        self._open.clear()
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
                s.close()

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()


def at_once(count: int, work: Callable[[int], object], *, timeout: float = 30.0
            ) -> list[BaseException]:
    """Run `work(0)` .. `work(count - 1)` in threads released together (a barrier), wait for
    all of them; returns what they raised."""
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        start.wait()
        try:
            work(n)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return errors
