"""Every service's OpenAPI document declares its error responses as problem+json, the
one envelope the services actually answer with."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from shared.config import SERVICES
from shared.http import PROBLEM

METHODS = {"get", "put", "post", "patch", "delete", "head", "options"}


def error_responses(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    components = spec.get("components", {}).get("responses", {})
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method not in METHODS:
                continue  # path-level "parameters"
            for status, response in operation.get("responses", {}).items():
                if status != "default" and int(status) < 400:
                    continue
                if "$ref" in response:
                    response = components[response["$ref"].rsplit("/", 1)[-1]]
                yield f"{method.upper()} {path} {status}", response


def test_every_documented_error_is_problem_json(client: Callable[[str], Any]) -> None:
    checked = 0
    for service in SERVICES:
        spec = client(service).get(f"/{service}/openapi.json").get_json()
        for where, response in error_responses(spec):
            content = response.get("content")
            if content:  # an error documented with a body says which
                assert list(content) == [PROBLEM], (service, where, list(content))
                checked += 1
    assert checked > 20  # every operation has at least its default error
