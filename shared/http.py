"""The HTTP edge every service shares: app wiring, problem+json errors, request ids,
health and readiness, metrics, and the bearer-token check.

Views stay thin: they parse with marshmallow (flask-smorest), call a use case with a unit of
work from `unit_of_work()`, and return what it gives back. Errors are raised, never built
in views; this module turns every failure into RFC 9457 problem+json.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import marshmallow as ma
from flask import Flask, Response, g, jsonify, request
from flask_smorest import Api
from kombu import Connection
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from werkzeug.exceptions import HTTPException, UnsupportedMediaType

from shared import logs
from shared.config import Settings
from shared.db import Database, UnitOfWork
from shared.errors import DomainError, TooManyRequests, Unauthorized
from shared.tokens import InvalidToken, TokenVerifier

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
F = TypeVar("F", bound=Callable[..., Any])

REQUESTS = Counter("http_requests_total", "HTTP requests", ["service", "method", "endpoint",
                                                             "status"])
LATENCY = Histogram("http_request_duration_seconds", "HTTP request latency",
                    ["service", "method", "endpoint"])


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details; `errors` maps each bad field to its messages."""

    type = ma.fields.String()
    title = ma.fields.String()
    status = ma.fields.Integer()
    detail = ma.fields.String()
    instance = ma.fields.String()
    errors = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.List(ma.fields.String()))


def problem(status: int, title: str, detail: str | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body["instance"] = request.path
    body.update({k: v for k, v in extra.items() if v is not None})
    if rid := logs.request_id.get():
        body["requestId"] = rid
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM
    return response


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """webargs' {"json": {"title": [...], "tags": {"0": [...]}}} -> {"title": [...], ...}."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                flat[name] = value
            else:
                flat.update(_flatten(value, name))
    elif isinstance(messages, list):
        flat[prefix or "_schema"] = [str(m) for m in messages]
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


class ProblemApi(Api):
    """flask-smorest's Api with problem+json as the one error envelope."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException) -> Response:  # type: ignore[override]
        status = error.code or 500
        data = getattr(error, "data", {}) or {}
        errors: dict[str, list[str]] | None = None
        if "messages" in data:
            by_location = data["messages"]
            errors = {}
            for location, messages in by_location.items():
                prefix = "" if location in ("json", "form", "files") else location
                errors.update(_flatten(messages, prefix))
        detail = data.get("message") or error.description
        if status == 422 and errors:
            detail = "Some fields are invalid"
        elif errors and list(errors) == ["_schema"]:
            detail, errors = "; ".join(errors["_schema"]), None
        response = problem(status, error.name, detail, errors=errors)
        if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response


@dataclass
class ServiceContext:
    """What a service's views need, wired once by the app factory."""

    settings: Settings
    db: Database
    verifier: TokenVerifier

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.db, source=f"/{self.settings.service}")


def service() -> ServiceContext:
    from flask import current_app

    return cast(ServiceContext, current_app.extensions["service"])


def unit_of_work() -> UnitOfWork:
    return service().unit_of_work()


def current_user_id() -> str:
    return cast(str, g.user_id)


def authenticated(view: F) -> F:
    """Require a valid bearer token for a user that has not been deleted."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("A bearer access token is required")
        ctx = service()
        try:
            claims = ctx.verifier.verify(token.strip())
        except InvalidToken as exc:
            raise Unauthorized("The access token is invalid or expired") from exc
        with ctx.db.sessions() as session:
            if ctx.db.is_deleted_user(session, claims.user_id):
                raise Unauthorized("The access token is invalid or expired")
        g.user_id = claims.user_id
        g.claims = claims
        return view(*args, **kwargs)

    wrapper._apidoc = getattr(view, "_apidoc", {})  # type: ignore[attr-defined]
    return cast(F, wrapper)


def create_service_app(
    settings: Settings,
    *,
    title: str,
    description: str,
    blueprints: list[Any],
    db: Database | None = None,
    verifier: TokenVerifier | None = None,
    config: dict[str, Any] | None = None,
) -> Flask:
    """The skeleton every service's `create_app` fills with its blueprints."""
    svc = settings.service
    logs.configure_logging(svc, settings.log_level)
    app = Flask(f"services.{svc}")
    app.config.update(
        API_TITLE=title,
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=f"/{svc}",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
        API_SPEC_OPTIONS={
            "info": {"description": description},
            "components": {"securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        },
        MAX_CONTENT_LENGTH=1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.config.update(config or {})
    db = db or Database(settings.database_url, svc)
    verifier = verifier or TokenVerifier(
        issuer=settings.token_issuer, audience=settings.token_audience,
        jwks_url=settings.jwks_url)
    app.extensions["service"] = ServiceContext(settings, db, verifier)
    api = ProblemApi(app)
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    _register_edge(app, api, settings, db)
    return app


def _register_edge(app: Flask, api: ProblemApi, settings: Settings, db: Database) -> None:
    svc = settings.service

    @app.before_request
    def start_request() -> Response | None:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _REQUEST_ID.match(incoming) else str(uuid.uuid4())
        g.log_tokens = [logs.request_id.set(rid), logs.correlation_id.set(rid)]
        g.started = time.perf_counter()
        if (request.method in ("POST", "PUT", "PATCH") and request.content_length
                and not request.is_json):
            raise UnsupportedMediaType("Send a JSON body with Content-Type: application/json")
        return None

    @app.after_request
    def finish_request(response: Response) -> Response:
        rid = logs.request_id.get()
        if rid:
            response.headers["X-Request-ID"] = rid
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        REQUESTS.labels(svc, request.method, endpoint, response.status_code).inc()
        LATENCY.labels(svc, request.method, endpoint).observe(elapsed)
        if response.status_code >= 500:
            log.error("request failed", extra={"status": response.status_code,
                                               "path": request.path})
        return response

    @app.teardown_request
    def end_request(_exc: BaseException | None) -> None:
        for token in reversed(g.pop("log_tokens", [])):
            token.var.reset(token)

    @app.errorhandler(DomainError)
    def domain_error(error: DomainError) -> Response:
        response = problem(error.status, error.title, error.detail or None, **error.extra)
        if isinstance(error, TooManyRequests):
            response.headers["Retry-After"] = str(error.retry_after)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="growth-diary"'
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        if isinstance(error, HTTPException):
            return api.handle_http_exception(error)
        log.exception("unhandled error")
        return problem(500, "Internal Server Error", "Something went wrong on our side")

    @app.get(f"/{svc}/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", service=svc)

    @app.get(f"/{svc}/readyz")
    def readyz() -> Response | tuple[Response, int]:
        checks: dict[str, str] = {}
        try:
            db.ping()
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - report, don't crash
            checks["database"] = f"unavailable: {type(exc).__name__}"
        try:
            with Connection(settings.amqp_url, connect_timeout=2) as conn:
                conn.ensure_connection(max_retries=1)
            checks["broker"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = f"unavailable: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        return jsonify(status="ready" if ready else "not ready", checks=checks), (
            200 if ready else 503)

    @app.get("/metrics")
    def metrics() -> Response:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            body = generate_latest(registry)
        else:
            body = generate_latest()
        return Response(body, mimetype=CONTENT_TYPE_LATEST)
