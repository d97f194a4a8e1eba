"""The OpenAPI documents say what the code does: what may be null is nullable, what the code
enforces the schema states, a required body is required, and the adapter's routes are in a
document of their own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from shared.ids import new_id
from shared.pagination import CURSOR_PATTERN, decode_cursor, encode_cursor


def document(client: Callable[[str], Any], path: str) -> dict[str, Any]:
    service = path.strip("/").split("/")[0]
    spec: dict[str, Any] = client(service).get(path).get_json()
    return spec


def schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = spec["components"]["schemas"][name]
    return found


def test_what_can_be_null_is_documented_nullable(client: Callable[[str], Any]) -> None:
    goals = document(client, "/goals/openapi.json")
    assert schema(goals, "Goal")["properties"]["completedAt"]["nullable"] is True
    auth = document(client, "/auth/openapi.json")
    profile = schema(auth, "Profile")["properties"]
    for field in ("emailVerified", "lastGenerationDate", "name", "image", "bio"):
        assert profile[field]["nullable"] is True, field
    adapter = document(client, "/auth/adapter/openapi.json")
    lookup = adapter["paths"]["/auth/adapter/users/{user_id}"]["get"]["responses"]["200"]
    ref = lookup["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert schema(adapter, ref)["nullable"] is True  # Auth.js's "not found" is null


def test_what_the_code_enforces_the_schema_states(client: Callable[[str], Any]) -> None:
    auth = document(client, "/auth/openapi.json")
    for name, field in [("Register", "password"), ("ResetConfirm", "password"),
                        ("PasswordChange", "newPassword")]:
        password = schema(auth, name)["properties"][field]
        assert (password["minLength"], password["maxLength"]) == (8, 128), name
    image = schema(auth, "ProfileUpdate")["properties"]["image"]
    assert image["nullable"] is True and image["pattern"].startswith("^https?://")
    assert schema(auth, "ProfileUpdate")["properties"]["yearsOfExperience"]["maximum"] == 80
    goals = document(client, "/goals/openapi.json")
    cursor = next(p for p in goals["paths"]["/goals"]["get"]["parameters"]
                  if p["name"] == "cursor")
    assert cursor["schema"]["pattern"] == CURSOR_PATTERN
    create = schema(goals, "GoalCreate")["properties"]["deadline"]
    assert "Not before startDate" in create["description"]


def test_every_cursor_of_the_documented_form_is_one_the_api_takes() -> None:
    from datetime import UTC, datetime

    when, id_ = datetime(2026, 12, 1, 11, 30, 0, 123456, tzinfo=UTC), new_id()
    assert decode_cursor(encode_cursor(when, id_)) == (when, id_)
    assert decode_cursor("fffffffffffff.z")[1] == "z"  # the largest is still a time


@pytest.mark.parametrize("method,path", [("PATCH", "/auth/me"), ("POST", "/goals"),
                                         ("PATCH", "/goals/{id}")])
def test_a_request_without_its_required_body_is_refused(
        client: Callable[[str], Any], auth_header: Callable[[str], dict[str, str]],
        method: str, path: str) -> None:
    user_id = new_id()
    headers = auth_header(user_id)
    service = path.strip("/").split("/")[0]
    if "{id}" in path:
        made = client("goals").post("/goals", headers=headers,
                                    json={"title": "A goal", "period": "DAILY"})
        path = path.replace("{id}", made.get_json()["id"])
    answer = client(service).open(path, method=method, headers=headers)
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert answer.get_json()["detail"] == "A JSON body is required"
    assert answer.headers["Content-Type"] == "application/problem+json"


def test_logout_documents_its_body_as_optional_and_takes_none(
        client: Callable[[str], Any]) -> None:
    auth = document(client, "/auth/openapi.json")
    assert auth["paths"]["/auth/logout"]["post"]["requestBody"].get("required") is not True


def test_the_adapter_is_a_document_of_its_own_behind_the_service_credential(
        client: Callable[[str], Any]) -> None:
    public = document(client, "/auth/openapi.json")
    adapter = document(client, "/auth/adapter/openapi.json")
    assert not [p for p in public["paths"] if p.startswith("/auth/adapter/")]
    assert len(adapter["paths"]) == 12
    assert adapter["security"] == [{"serviceCredential": []}]
    assert adapter["components"]["securitySchemes"]["serviceCredential"]["scheme"] == "bearer"
    assert client("auth").get("/auth/adapter/docs").status_code == 200


def test_the_gateways_own_405_says_what_it_allows(edge_system: Any) -> None:
    from tests.e2e.test_gateway import raw_request

    status, headers, _ = raw_request(
        edge_system, b"TRACE /goals HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
    assert status == 405
    assert headers["allow"] == "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
    # A service's own 405 names the route's methods, once.
    answer = requests.put(f"{edge_system.url}/goals/healthz", timeout=10)
    assert answer.status_code == 405 and answer.headers["Allow"].count("GET") == 1
