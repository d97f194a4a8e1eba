"""Raw AMQP floor: what pika + one RabbitMQ quorum queue can do on this machine.

This is the baseline for the event pipeline benchmark: any latency or throughput the
pipeline loses relative to these figures is overhead we added, not the broker's.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import secrets
import struct
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pika

DEFAULT_URL = "amqp://guest:guest@localhost:5672//"
PREFETCH = 100
# Body = sequence number + publisher wall-clock send time in ns; wall clock because the
# consumer is another process and perf_counter values are not comparable across processes.
BODY = struct.Struct("!Qq")
NS_PER_MS = 1_000_000


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); no interpolation, so p99 is a real sample."""
    if not values:
        raise ValueError("percentile of empty sequence")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _pika_params(url: str) -> pika.URLParameters:
    """Accept the project's kombu-style URL: kombu reads a "//" path as vhost "/", pika as ""."""
    parts = urlsplit(url)
    if parts.path == "//":
        url = urlunsplit(parts._replace(path="/%2F"))
    return pika.URLParameters(url)


def _consume(url: str, queue: str, expected: int, deadline_s: float, out: Any) -> None:
    """Consumer process: ack each message, record latencies, stop at `expected` or deadline."""
    latencies: list[int] = []
    last_ns = 0
    stop_at = time.monotonic() + deadline_s
    conn = pika.BlockingConnection(_pika_params(url))
    try:
        ch = conn.channel()
        ch.basic_qos(prefetch_count=PREFETCH)

        def on_message(chan: Any, method: Any, _props: Any, body: bytes) -> None:
            nonlocal last_ns
            now = time.time_ns()
            latencies.append(now - BODY.unpack(body)[1])
            last_ns = now
            chan.basic_ack(method.delivery_tag)

        ch.basic_consume(queue, on_message)
        out.put("ready")
        while len(latencies) < expected and time.monotonic() < stop_at:
            conn.process_data_events(time_limit=0.2)
    finally:
        out.put((latencies, last_ns))
        if conn.is_open:
            conn.close()


def _run(url: str, count: int, rate: float | None, deadline_s: float) -> dict[str, float]:
    """One measurement on a fresh quorum queue; rate=None publishes as fast as confirms allow."""
    queue = f"bench.floor.{secrets.token_hex(6)}"
    params = _pika_params(url)
    conn = pika.BlockingConnection(params)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_consume, args=(url, queue, count, deadline_s, out), daemon=True)
    try:
        ch = conn.channel()
        ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
        ch.confirm_delivery()
        proc.start()
        if out.get(timeout=15) != "ready":
            raise RuntimeError("consumer did not start")
        props = pika.BasicProperties(delivery_mode=2)
        first_ns = time.time_ns()
        start = time.perf_counter()
        for seq in range(count):
            if rate is not None:
                # Sleep to a fixed schedule so a slow publish does not push every later one back.
                delay = start + seq / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
            body = BODY.pack(seq, time.time_ns())
            ch.basic_publish("", queue, body, props)  # blocks until the broker confirms
        latencies, last_ns = out.get(timeout=deadline_s + 10)
        proc.join(timeout=5)
    finally:
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout=5)
        _delete_queue(params, conn, queue)
    if len(latencies) < count:
        raise RuntimeError(f"consumer got {len(latencies)}/{count} messages before its deadline")
    p50, p99 = percentile(latencies, 50) / NS_PER_MS, percentile(latencies, 99) / NS_PER_MS
    if rate is None:
        msgs_per_s = count / ((last_ns - first_ns) / 1e9)
        return {"msgs_per_s": msgs_per_s, "p50_ms": p50, "p99_ms": p99, "count": count}
    return {"rate": rate, "p50_ms": p50, "p99_ms": p99, "count": count}


def _delete_queue(params: pika.URLParameters, conn: pika.BlockingConnection, queue: str) -> None:
    """Delete the bench queue, reconnecting if the publisher connection died mid-run."""
    try:
        if conn.is_closed:
            conn = pika.BlockingConnection(params)
        conn.channel().queue_delete(queue)
    finally:
        if conn.is_open:
            conn.close()


def measure_floor(
    amqp_url: str, *, count: int = 3000, steady_rate: float = 50.0, steady_count: int = 500
) -> dict[str, dict[str, float]]:
    """Saturation throughput/latency and latency at a steady paced rate, each on its own queue."""
    saturation = _run(amqp_url, count, None, deadline_s=20.0)
    steady = _run(amqp_url, steady_count, steady_rate, deadline_s=steady_count / steady_rate + 10)
    return {"saturation": saturation, "steady": steady}


if __name__ == "__main__":
    print(json.dumps(measure_floor(os.environ.get("AMQP_URL", DEFAULT_URL)), indent=2))
