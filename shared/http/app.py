"""App wiring every service shares: the Flask app with flask-smorest, request ids, request
metrics, problem+json errors, probes, and the context views reach for.

Views stay thin: they parse with marshmallow (flask-smorest), call a use case with a unit of
work from `unit_of_work()`, and return what it gives back. Errors are raised, never built
in views (see `shared.http.problems`).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from pathlib import Path
from typing import Any, cast

import orjson
from flask import Flask, Response, g, request, send_from_directory
from flask.json.provider import DefaultJSONProvider
from prometheus_client import Counter, Histogram
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import NotFound, UnsupportedMediaType
from werkzeug.routing import BaseConverter

from shared import logs, tracing
from shared.config import Settings
from shared.db import Database
from shared.http.bearer import refuse_nul_ids
from shared.http.context import ServiceContext
from shared.http.openapi import Document
from shared.http.probes import register_probes
from shared.http.problems import ProblemApi, register_error_handlers
from shared.tokens import TokenVerifier
from shared.tombstones import Tombstones

log = logging.getLogger(__name__)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")

REQUESTS = Counter("http_requests_total", "HTTP requests", ["service", "method", "endpoint",
                                                             "status"])
HERE = Path(__file__).resolve().parent
# Swagger UI's own files (swagger-ui-bundle, pinned in pyproject.toml) and the script that starts
# it (static/docs-init.js): what /<svc>/docs loads, from the service, never from a CDN.
DOCS_ASSETS = {
    "swagger-ui.css": Path(swagger_ui_path),
    "swagger-ui-bundle.js": Path(swagger_ui_path),
    "favicon-32x32.png": Path(swagger_ui_path),
    "docs-init.js": HERE / "static",
}
DOCS_ASSET_MAX_AGE_S = 86400  # the files change only with the pinned package

LATENCY = Histogram("http_request_duration_seconds", "HTTP request latency",
                    ["service", "method", "endpoint"])


class FastJSON(DefaultJSONProvider):
    """Responses encoded by orjson, in the schema's key order: a page of 20 goals or posts
    in a tenth of the time json takes (about 0.1 ms a request, measured by bench/diary.py).
    The same JSON, except that non-ASCII text is sent as UTF-8 rather than as \\u escapes;
    debug mode keeps the indented form. What orjson cannot encode goes to Flask's default."""

    sort_keys = False

    def response(self, *args: Any, **kwargs: Any) -> Any:
        if self.compact is False or (self.compact is None and self._app.debug):
            return super().response(*args, **kwargs)
        obj = self._prepare_response_obj(args, kwargs)
        body = orjson.dumps(obj, default=self.default, option=orjson.OPT_APPEND_NEWLINE)
        response_class = cast(type[Response], self._app.response_class)
        return response_class(body, mimetype=self.mimetype)


def create_service_app(
    settings: Settings,
    *,
    title: str,
    description: str,
    blueprints: list[Any],
    db: Database | None = None,
    verifier: TokenVerifier | None = None,
    config: dict[str, Any] | None = None,
    documents: tuple[Document, ...] = (),
    converters: dict[str, type[BaseConverter]] | None = None,
) -> Flask:
    """The skeleton every service's `create_app` fills with its blueprints (and, for routes
    the gateway does not route, `documents` of their own; `converters`: URL converters its
    routes name, documented as strings)."""
    svc = settings.service
    logs.configure_logging(svc, settings.log_level)
    # templates/swagger_ui.html overrides flask-smorest's (the app's folder is searched first)
    app = Flask(f"services.{svc}", template_folder=str(HERE / "templates"))
    app.config.update(
        API_TITLE=title,
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=f"/{svc}",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=f"/{svc}/docs/assets/",
        API_SPEC_OPTIONS={
            "info": {"description": description},
            "components": {"securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        },
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    app.config.update(config or {})
    app.json = FastJSON(app)
    db = db or Database(settings.database_url, svc)
    verifier = verifier or TokenVerifier(
        issuer=settings.token_issuer, audience=settings.token_audience,
        jwks_url=settings.jwks_url)
    tombstones = Tombstones(db, horizon_s=settings.tombstone_horizon_s)
    app.extensions["service"] = ServiceContext(settings, db, verifier, tombstones)
    api = ProblemApi(app)
    for name, converter in (converters or {}).items():
        app.url_map.converters[name] = converter
        api.register_converter(converter, lambda _converter: {"type": "string"})
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    for document in documents:
        _register_document(app, svc, document)
    _register_docs_assets(app, svc)
    _register_request_hooks(app, svc)
    register_error_handlers(app, api)
    register_probes(app, settings, db)
    if tracing.configure(svc):  # OTEL_EXPORTER_OTLP_ENDPOINT set: requests and queries traced
        tracing.instrument_app(app)
        tracing.instrument_engine(db.engine)
    return app


def _register_document(app: Flask, svc: str, document: Document) -> None:
    key = f"{document.name}_"
    spec_options: dict[str, Any] = {"info": {"description": document.description}}
    if document.security_schemes:
        spec_options["components"] = {"securitySchemes": document.security_schemes}
    if document.security:
        spec_options["security"] = document.security
    app.config.update({
        f"{key}API_TITLE": document.title,
        f"{key}API_VERSION": app.config["API_VERSION"],
        f"{key}OPENAPI_VERSION": app.config["OPENAPI_VERSION"],
        f"{key}OPENAPI_URL_PREFIX": document.prefix,
        f"{key}OPENAPI_JSON_PATH": "openapi.json",
        f"{key}OPENAPI_SWAGGER_UI_PATH": "docs",
        f"{key}OPENAPI_SWAGGER_UI_URL": f"/{svc}/docs/assets/",
        f"{key}API_SPEC_OPTIONS": spec_options,
    })
    api = ProblemApi(app, config_prefix=key)
    for blueprint in document.blueprints:
        api.register_blueprint(blueprint)


def _register_docs_assets(app: Flask, svc: str) -> None:
    @app.get(f"/{svc}/docs/assets/<name>")
    def docs_asset(name: str) -> Response:
        folder = DOCS_ASSETS.get(name)
        if folder is None:
            raise NotFound()
        return send_from_directory(folder, name, max_age=DOCS_ASSET_MAX_AGE_S)


def _register_request_hooks(app: Flask, svc: str) -> None:
    @app.before_request
    def start_request() -> Response | None:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _REQUEST_ID.match(incoming) else str(uuid.uuid4())
        g.log_tokens = [logs.request_id.set(rid), logs.correlation_id.set(rid)]
        g.started = time.perf_counter()
        if (request.method in ("POST", "PUT", "PATCH") and request.content_length
                and not request.is_json):
            raise UnsupportedMediaType("Send a JSON body with Content-Type: application/json")
        view = app.view_functions.get(request.endpoint or "")
        if not getattr(view, "_authenticated", False):  # authenticated views: after the token
            refuse_nul_ids(request.view_args or {})
        return None

    @app.after_request
    def finish_request(response: Response) -> Response:
        # Tokens and personal data must not be kept by a browser or proxy cache: every answer
        # is no-store unless its view chose otherwise (the JWKS, the docs assets).
        response.headers.setdefault("Cache-Control", "no-store")
        rid = logs.request_id.get()
        if rid:
            response.headers["X-Request-ID"] = rid
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        REQUESTS.labels(svc, request.method, endpoint, response.status_code).inc()
        LATENCY.labels(svc, request.method, endpoint).observe(elapsed)
        if response.status_code >= 500 and response.status_code != 503:  # 503: an outage
            log.error("request failed", extra={"status": response.status_code,
                                               "path": request.path})
        return response

    @app.teardown_request
    def end_request(_exc: BaseException | None) -> None:
        for token in reversed(g.pop("log_tokens", [])):
            token.var.reset(token)
