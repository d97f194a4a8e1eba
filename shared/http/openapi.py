"""What the OpenAPI documents say beyond flask-smorest's defaults, so that they tell the truth:

- a response schema that may be JSON `null` as a whole (the Auth.js adapter's "not found")
  says so: a schema class with `OPENAPI_NULLABLE = True` is documented `nullable: true`;
- routes for another audience than the gateway's clients (the adapter, for the Next.js
  server) are served in a document of their own (`Document`), beside the public one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin
from flask_smorest.utils import resolve_schema_instance


class TruthfulMarshmallowPlugin(MarshmallowPlugin):
    # (apispec's two declarations of this method disagree with each other)
    def schema_helper(self, name: str, _: Any, schema: Any = None,  # type: ignore[override]
                      **kwargs: Any) -> dict[Any, Any] | None:
        json_schema: dict[Any, Any] | None = super().schema_helper(name, _, schema=schema,
                                                                   **kwargs)
        if json_schema is not None and getattr(resolve_schema_instance(schema),
                                               "OPENAPI_NULLABLE", False):
            json_schema["nullable"] = True
        return json_schema


@dataclass(frozen=True)
class Document:
    """A second OpenAPI document of a service: its own title, URL prefix (the document at
    `<prefix>/openapi.json`, its docs at `<prefix>/docs`), blueprints and security."""

    name: str  # a config prefix, e.g. "ADAPTER"
    title: str
    description: str
    prefix: str
    blueprints: list[Any]
    security_schemes: dict[str, Any] = field(default_factory=dict)
    security: list[dict[str, list[str]]] = field(default_factory=list)
