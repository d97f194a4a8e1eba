"""Input PostgreSQL or UTF-8 cannot hold, and JSON nested without end, is a 4xx
problem+json naming the field on every route, never a 500, and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from shared.http import PROBLEM
from tests.helpers import new_user_id

NUL, SURROGATE = "a\\u0000b", "a\\ud800b"  # as they arrive: JSON escapes


def post_raw(api: Any, path: str, body: str, headers: dict[str, str] | None = None) -> Any:
    return api.post(path, data=body, headers={"Content-Type": "application/json",
                                              **(headers or {})})


@pytest.mark.parametrize("text", [NUL, SURROGATE], ids=["nul", "lone-surrogate"])
def test_unstorable_text_is_a_422_naming_the_field_everywhere(
        text: str, client: Callable[[str], Any],
        auth_header: Callable[[str], dict[str, str]]) -> None:
    headers = auth_header(new_user_id())
    cases = [
        ("goals", "/goals", f'{{"title": "{text}", "period": "DAILY"}}', "title"),
        ("diary", "/diary/posts", f'{{"title": "ok", "content": "{text}"}}', "content"),
        ("diary", "/diary/posts", f'{{"title": "{text}", "content": "ok"}}', "title"),
        ("auth", "/auth/register",
         f'{{"email": "x{text}@example.com", "password": "long enough pass 123"}}', "email"),
        ("auth", "/auth/register",
         f'{{"email": "ok@example.com", "password": "long enough {text} 123"}}', "password"),
        ("auth", "/auth/login",
         f'{{"email": "ok@example.com", "password": "{text}"}}', "password"),
    ]
    for service, path, body, field in cases:
        response = post_raw(client(service), path, body, headers)
        assert response.status_code == 422, (path, body, response.get_json())
        assert response.mimetype == PROBLEM
        assert field in response.get_json()["errors"], response.get_json()


def test_unstorable_text_inside_a_list_names_the_item(
        client: Callable[[str], Any], make_token: Callable[..., str]) -> None:
    auth = client("auth")
    email, password = f"{new_user_id()}@example.com", "a long and unusual passphrase 7"
    assert auth.post("/auth/register", json={"email": email, "password": password}
                     ).status_code == 201
    token = auth.post("/auth/login", json={"email": email, "password": password}
                      ).get_json()["accessToken"]
    response = auth.patch("/auth/me", data='{"currentSkills": ["sql", "a\\u0000"]}',
                          headers={"Authorization": f"Bearer {token}",
                                   "Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"currentSkills.1": [
        "Must not contain NUL characters."]}
    assert auth.get("/auth/me", headers={"Authorization": f"Bearer {token}"}
                    ).get_json()["currentSkills"] == []


def test_a_query_string_with_nul_is_a_422(
        client: Callable[[str], Any], auth_header: Callable[[str], dict[str, str]]) -> None:
    response = client("goals").get("/goals?cursor=a%00b", headers=auth_header(new_user_id()))
    assert response.status_code == 422
    assert "query.cursor" in response.get_json()["errors"]


@pytest.mark.parametrize("service,path", [("goals", "/goals"), ("auth", "/auth/register"),
                                          ("diary", "/diary/posts")])
def test_json_nested_a_thousand_deep_is_a_400_before_it_is_parsed(
        service: str, path: str, client: Callable[[str], Any],
        auth_header: Callable[[str], dict[str, str]]) -> None:
    body = '{"title": ' + "[" * 1000 + "]" * 1000 + "}"
    response = post_raw(client(service), path, body, auth_header(new_user_id()))
    assert response.status_code == 400
    assert response.mimetype == PROBLEM
    assert "nested" in response.get_json()["detail"]
    shallow = '{"title": ' + json.dumps([[["a"]]]) + ', "period": "DAILY"}'
    assert post_raw(client(service), path, shallow, auth_header(new_user_id())
                    ).status_code == 422  # parsed, then refused by the schema


@pytest.mark.parametrize("service", ["auth", "goals", "diary", "stories"])
def test_a_nul_in_a_path_id_is_a_404_on_every_route_that_takes_one(
        service: str, client: Callable[[str], Any],
        auth_header: Callable[[str], dict[str, str]]) -> None:
    """Every documented operation with a path parameter, called with `a%00b` in it by a
    signed-in member: 404 problem+json, never the 500 of PostgreSQL refusing the NUL."""
    api = client(service)
    document = api.get(f"/{service}/openapi.json").get_json()
    headers = auth_header(new_user_id())
    called = 0
    for path, item in document["paths"].items():
        if "{" not in path:
            continue
        concrete = "/".join("a%00b" if part.startswith("{") else part
                            for part in path.split("/"))
        for method in (m for m in item if m in ("get", "post", "put", "patch", "delete")):
            response = api.open(concrete, method=method.upper(), json={}, headers=headers)
            assert response.status_code == 404, (method, path, response.get_data(as_text=True))
            assert response.mimetype == PROBLEM
            called += 1
    assert called, f"{service} documents no route with a path parameter"
