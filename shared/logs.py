"""Structured logs: one JSON object a line, carrying request, correlation and event ids, and
the current trace and span ids when tracing is on (shared.tracing).

The ids live in context variables so every log line inside a request or an event handler
carries them without being passed around.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from shared import tracing

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
event_id: ContextVar[str | None] = ContextVar("event_id", default=None)

_CONTEXT = {"request_id": request_id, "correlation_id": correlation_id, "event_id": event_id}
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, var in _CONTEXT.items():
            value = var.get()
            if value:
                line[key] = value
        line.update(tracing.log_ids())
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("amqp", "kombu", "urllib3", "pika"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def log_context(**ids: str | None) -> Iterator[None]:
    """Bind request/correlation/event ids for the duration of a block."""
    tokens = [(_CONTEXT[key], _CONTEXT[key].set(value)) for key, value in ids.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
