"""problem+json (RFC 9457): the one error envelope, for errors raised anywhere in a request.

Views never build errors: use cases raise `DomainError`s, marshmallow's validation errors
arrive through flask-smorest, and `register_error_handlers` turns each into a problem.
"""

from __future__ import annotations

import http
import logging
from typing import Any

import marshmallow as ma
from flask import Flask, Response, jsonify, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from shared import logs
from shared.db import is_database_outage
from shared.errors import DomainError, TooManyRequests
from shared.http.openapi import TruthfulMarshmallowPlugin

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
OUTAGE_RETRY_AFTER_S = 2


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details; `errors` maps each bad field to its messages, `requestId`
    is the request's X-Request-ID. Other members may appear (RFC 9457's extensions)."""

    class Meta:
        unknown = ma.INCLUDE  # documented as additionalProperties: true

    type = ma.fields.String()
    title = ma.fields.String()
    status = ma.fields.Integer()
    detail = ma.fields.String()
    instance = ma.fields.String()
    errors = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.List(ma.fields.String()))
    requestId = ma.fields.String()


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
    """flask-smorest's Api with problem+json as the one error envelope, and documented as
    such: every error response in the OpenAPI document is `application/problem+json`."""

    ERROR_SCHEMA = ProblemSchema

    def __init__(self, app: Flask | None = None, *, config_prefix: str = "") -> None:
        super().__init__(app, config_prefix=config_prefix,
                         spec_kwargs={"marshmallow_plugin": TruthfulMarshmallowPlugin()})

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            content_type = PROBLEM if status >= 400 else self.DEFAULT_RESPONSE_CONTENT_TYPE
            prepare_response(response, self.spec, content_type)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, default, lazy=True)

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


def register_error_handlers(app: Flask, api: ProblemApi) -> None:
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
        if is_database_outage(error):
            # Not a bug: one line, no traceback. SQLAlchemy has already discarded the pool's
            # connections older than the failure, so the next request connects afresh.
            log.warning("database unavailable", extra={"error": type(error).__name__,
                                                       "path": request.path})
            response = problem(503, "Service Unavailable",
                               "The database is unavailable; try again shortly")
            response.headers["Retry-After"] = str(OUTAGE_RETRY_AFTER_S)
            return response
        log.exception("unhandled error")
        return problem(500, "Internal Server Error", "Something went wrong on our side")
