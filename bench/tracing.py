"""What tracing costs: the pipeline and HTTP figures measured with tracing off and on, in
one run. On: every process exports its spans over OTLP/HTTP (shared.tracing) to a local
collector that accepts and discards them, so what is measured is the instrumentation, the
span bookkeeping and the export, not a collector's speed.

Target: tracing on costs at most 15% of each throughput (pipeline saturation, goals list
and auth/me through the gateway), as it is switched on: with the default sampling
(shared.tracing: parent-based, one root in ten). The HTTP figures with every request
recorded (`OTEL_TRACES_SAMPLER=parentbased_always_on`) are printed beside them.

Drift on a shared machine is larger than the cost measured, so neither side gets a time of
its own: the pipeline runs off, on, on, off (each figure the mean of its two), and the three
HTTP stacks (off, on, all recorded) run at once and are loaded in turns, slice by slice.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench import http
from bench.pipeline import measure_pipeline

MAX_COST = 0.15


class Collector:
    """An OTLP/HTTP endpoint that answers 200 to every export and counts them."""

    def __init__(self) -> None:
        self.exports = 0
        self.bytes = 0
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                collector.bytes += len(self.rfile.read(length))
                collector.exports += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def measure_tracing() -> dict[str, Any]:
    collector = Collector()
    on = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "500"}
    try:
        # The pipeline off, on, on, off (a drift over the run weighs on both alike): each
        # figure the mean of its two runs.
        pipelines: dict[str, list[dict[str, dict[str, float]]]] = {"off": [], "on": []}
        for label in ("off", "on", "on", "off"):
            pipelines[label].append(measure_pipeline(extra_env=on if label == "on" else None))
        # HTTP: the three stacks at once, loaded in turns, slice by slice.
        side_by_side = http.measure_http_side_by_side({
            "off": {}, "on": on, "all": {**on, "OTEL_TRACES_SAMPLER": "parentbased_always_on"}})
        figures: dict[str, Any] = {f"pipeline_{label}": _mean_of(runs)
                                   for label, runs in pipelines.items()}
        figures.update({f"http_{label}": runs for label, runs in side_by_side.items()})
        figures["pipeline_runs"] = pipelines
    finally:
        collector.close()
    figures["exports"] = {"requests": collector.exports, "bytes": collector.bytes}
    return figures


def _mean_of(runs: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """The figures of several pipeline runs, each the mean of theirs."""
    return {part: {key: sum(run[part][key] for run in runs) / len(runs)
                   for key in runs[0][part]} for part in runs[0]}


def report(figures: dict[str, Any]) -> bool:
    rows = [
        ("pipeline saturation msg/s", figures["pipeline_off"]["saturation"]["msgs_per_s"],
         figures["pipeline_on"]["saturation"]["msgs_per_s"]),
        ("goals list req/s", figures["http_off"]["goals_list"]["rps"],
         figures["http_on"]["goals_list"]["rps"]),
        ("auth/me req/s", figures["http_off"]["auth_me"]["rps"],
         figures["http_on"]["auth_me"]["rps"]),
    ]
    ok = True
    print(f"{'tracing':<28}{'off':>10}{'on':>10}{'cost':>8}   (on: default sampling)")
    for name, off, traced in rows:
        cost = 1 - traced / off if off else 0.0
        ok &= cost <= MAX_COST
        print(f"{name:<28}{off:>10.0f}{traced:>10.0f}{cost:>8.1%}")
    for name, key in (("goals list req/s", "goals_list"), ("auth/me req/s", "auth_me")):
        off, every = figures["http_off"][key]["rps"], figures["http_all"][key]["rps"]
        print(f"{name + ', all recorded':<28}{off:>10.0f}{every:>10.0f}"
              f"{1 - every / off if off else 0.0:>8.1%}   (not a target)")
    for label in ("off", "on"):
        each = ", ".join(f"{r['saturation']['msgs_per_s']:.0f}"
                         for r in figures["pipeline_runs"][label])
        print(f"  pipeline saturation {label}, run by run: {each} msg/s")
    print(f"{'pipeline steady p99 ms':<28}{figures['pipeline_off']['steady']['p99_ms']:>10.2f}"
          f"{figures['pipeline_on']['steady']['p99_ms']:>10.2f}")
    print(f"spans exported: {figures['exports']['requests']} requests, "
          f"{figures['exports']['bytes']} bytes")
    print(f"target: tracing costs at most {MAX_COST:.0%} of each throughput: "
          f"{'met' if ok else 'MISSED'}")
    return ok
