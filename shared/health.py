"""A worker's vital signs, served on a port of its own: alive, ready, and its metrics.

Each loop of the worker (relay, consumer, mail delivery, ...) holds a `Pulse`: it beats on
every turn of its loop, idle or busy, and says whether it holds its connections. The
worker's health server answers from those pulses:

- `/healthz` (alive): every loop beat within `WORKER_STALL_SECONDS`. A loop stuck in a call
  that never returns, or a process stopped with SIGSTOP (which then answers nothing at all),
  fails it, so whatever supervises the worker sees it and can restart it.
- `/readyz` (ready): alive, and every loop is connected to what it needs (the broker, the
  database). The body carries the backlog: outbox rows pending and the age of the oldest.
- `/metrics`: Prometheus text, the worker's own registry (events consumed, failed, retried
  and dead-lettered by type, relay batches and publish latency, consumer batch latency,
  the outbox backlog and whatever gauges the service adds, such as auth's pending mail).

The server is the standard library's, in a daemon thread: a probe costs one short query at
most, and it needs no web framework in the worker.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# The worker's metrics. A registry of their own, so nothing the web process exports (or a
# test importing both) mixes with them.
REGISTRY = CollectorRegistry(auto_describe=True)
EVENTS = Counter("worker_events_total", "Events handled, by type and outcome "
                 "(applied, failed, retried, dead_lettered)", ["type", "outcome"],
                 registry=REGISTRY)
CONSUMER_BATCH = Histogram("worker_consumer_batch_seconds",
                           "From a batch in hand to its acks sent", registry=REGISTRY,
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
RELAY_BATCHES = Counter("worker_relay_batches_total", "Outbox batches published",
                        registry=REGISTRY)
RELAY_EVENTS = Counter("worker_relay_events_total", "Outbox rows published",
                       registry=REGISTRY)
RELAY_PUBLISH = Histogram("worker_relay_publish_seconds",
                          "Publishing one outbox batch, until the broker confirms it",
                          registry=REGISTRY,
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5))


class Pulse:
    """One loop's signs of life: when it last turned, and whether it is connected."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.last_beat = time.monotonic()
        self.connected = False
        self.problem = "not connected yet"

    def beat(self) -> None:
        self.last_beat = time.monotonic()

    def up(self) -> None:
        self.connected, self.problem = True, ""
        self.beat()

    def down(self, problem: str) -> None:
        self.connected, self.problem = False, problem
        self.beat()  # backing off is progress too: the loop is alive, just not ready


Backlog = Callable[[], Mapping[str, float]]


class Vitals:
    """The pulses of one worker process, and the backlog it reports."""

    def __init__(self, *, stall_after_s: float) -> None:
        self.stall_after_s = stall_after_s
        self.pulses: dict[str, Pulse] = {}
        self.backlogs: list[Backlog] = []

    def pulse(self, name: str) -> Pulse:
        return self.pulses.setdefault(name, Pulse(name))

    def alive(self) -> tuple[bool, dict[str, Any]]:
        now = time.monotonic()
        loops = {p.name: round(now - p.last_beat, 1) for p in self.pulses.values()}
        stalled = sorted(name for name, quiet in loops.items() if quiet > self.stall_after_s)
        return not stalled, {"last_beat_s": loops, "stalled": stalled}

    def ready(self) -> tuple[bool, dict[str, Any]]:
        alive, body = self.alive()
        problems = {p.name: p.problem for p in self.pulses.values() if not p.connected}
        backlog: dict[str, float] = {}
        for source in self.backlogs:
            try:
                backlog.update(source())
            except Exception as exc:  # noqa: BLE001 - a probe reports, never raises
                problems["backlog"] = f"unavailable: {type(exc).__name__}"
        return alive and not problems, {**body, "not_connected": problems, "backlog": backlog}


class BacklogGauges(Collector):
    """The backlog as gauges, read when Prometheus scrapes."""

    def __init__(self, vitals: Vitals) -> None:
        self.vitals = vitals

    def collect(self) -> Iterable[Metric]:
        values: dict[str, float] = {}
        for source in self.vitals.backlogs:
            try:
                values.update(source())
            except Exception:  # noqa: BLE001, S112 - an unreadable backlog is left out
                continue
        for name, value in sorted(values.items()):
            yield GaugeMetricFamily(f"worker_{name}", f"Backlog: {name.replace('_', ' ')}",
                                    value=value)


class Exposed:
    """What /metrics shows: the worker's registry and this process's backlog gauges."""

    def __init__(self, *collectors: Collector) -> None:
        self.collectors = collectors

    def collect(self) -> Iterable[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def serve(vitals: Vitals, host: str, port: int) -> ThreadingHTTPServer:
    """Start the health server in a daemon thread; returns it (its port, if 0 was asked)."""
    exposed = Exposed(REGISTRY, BacklogGauges(vitals))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/metrics":
                self._send(200, generate_latest(exposed), CONTENT_TYPE_LATEST)  # type: ignore[arg-type]
                return
            probe = {"/healthz": vitals.alive, "/readyz": vitals.ready}.get(self.path)
            if probe is None:
                self._send(404, b'{"status": "not found"}', "application/json")
                return
            ok, body = probe()
            status = "ok" if ok else "failing"
            self._send(200 if ok else 503, json.dumps({"status": status, **body}).encode(),
                       "application/json")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # probes every few seconds would drown the log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    log.info("health served", extra={"port": server.server_address[1]})
    return server
