"""Health probes, metrics and the event contracts every web process serves.

`/<svc>/healthz` says the process answers; `/<svc>/readyz` says it can serve requests, which
needs the database alone (writes go to the outbox, which buffers them while the broker is
away), so the broker is reported as a detail and does not fail readiness.
"""

from __future__ import annotations

import importlib
import os
import socket
from urllib.parse import urlsplit

from flask import Flask, Response, jsonify
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from shared.config import Settings
from shared.db import Database

AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


def broker_answers(amqp_url: str, timeout: float = 2.0) -> bool:
    """Does a RabbitMQ answer the AMQP 0-9-1 greeting at `amqp_url`? A socket and eight
    bytes, so the web process needs no AMQP client library."""
    parts = urlsplit(amqp_url)
    try:
        with socket.create_connection((parts.hostname or "localhost", parts.port or 5672),
                                      timeout=timeout) as sock:
            sock.sendall(AMQP_HEADER)
            frame = sock.recv(8)
    except OSError:
        return False
    return frame[:1] == b"\x01"  # a method frame: connection.start


def register_probes(app: Flask, settings: Settings, db: Database) -> None:
    svc = settings.service
    documents: dict[str, str] = {}
    # Set by deploy/gunicorn.conf.py before the app loads (prometheus_client reads it too).
    multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")

    @app.get(f"/{svc}/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", service=svc)

    @app.get(f"/{svc}/readyz")
    def readyz() -> tuple[Response, int]:
        checks: dict[str, str] = {}
        try:
            db.ping()
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - report, don't crash
            checks["database"] = f"unavailable: {type(exc).__name__}"
        checks["broker"] = "ok" if broker_answers(settings.amqp_url) else "unavailable"
        ready = checks["database"] == "ok"
        return jsonify(status="ready" if ready else "not ready", checks=checks), (
            200 if ready else 503)

    @app.get(f"/{svc}/asyncapi.json")
    def asyncapi() -> Response:
        """The events this service sends and receives, as AsyncAPI 3.0 (shared.asyncapi)."""
        if "asyncapi" not in documents:
            # Built on the first ask (apispec's conversion is not free), then kept.
            from shared import asyncapi as contracts

            handlers = importlib.import_module(f"services.{svc}.handlers").HANDLERS
            documents["asyncapi"] = contracts.render(contracts.document(
                {svc: handlers}, service=svc, namespace=settings.namespace))
        return Response(documents["asyncapi"], mimetype="application/json")

    @app.get("/metrics")
    def metrics() -> Response:
        if multiprocess_dir:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            body = generate_latest(registry)
        else:
            body = generate_latest()
        return Response(body, mimetype=CONTENT_TYPE_LATEST)
