"""The AsyncAPI document: valid AsyncAPI 3.0, current with the catalogue, every reference
resolving, held to the released contracts; each service serves its own part."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from shared import asyncapi
from shared.events import CATALOGUE
from shared.services import SERVICES

SPEC = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "asyncapi-3.0.0.json"


@pytest.fixture(scope="module")
def current() -> dict[str, Any]:
    return asyncapi.document(asyncapi.consumers())


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(doc: dict[str, Any], pointer: str) -> Any:
    assert pointer.startswith("#/"), pointer
    node: Any = doc
    for part in pointer[2:].split("/"):
        node = node[part]
    return node


def test_the_document_is_valid_asyncapi_3_and_every_reference_resolves(
        current: dict[str, Any]) -> None:
    spec = json.loads(SPEC.read_text())
    errors = list(jsonschema.validators.validator_for(spec)(spec).iter_errors(current))
    assert errors == []
    for pointer in set(refs(current)):
        assert resolve(current, pointer) is not None, pointer


def test_every_event_type_is_a_message_with_its_payload_and_its_consumers(
        current: dict[str, Any]) -> None:
    messages = {m["name"]: m for m in current["components"]["messages"].values()}
    assert set(messages) == set(CATALOGUE)
    consumed = asyncapi.consumers()
    for type_, message in messages.items():
        payload = resolve(current, message["payload"]["$ref"])
        assert set(payload["properties"]) == set(CATALOGUE[type_]._declared_fields)
        receiving = current["operations"].get
        for svc, handled in consumed.items():
            if type_ in handled:
                channel = receiving(f"{svc}_receives")["channel"]["$ref"]
                assert asyncapi._key(type_) in resolve(current, channel)["messages"]
    assert current["channels"]["events"]["bindings"]["amqp"]["exchange"]["type"] == "topic"


def test_the_committed_document_is_current_and_breaks_no_released_contract() -> None:
    assert asyncapi.main(["--check"]) == 0, "run `make asyncapi`"


def changed(doc: dict[str, Any], type_: str, edit: Callable[[dict[str, Any]], None]
            ) -> dict[str, Any]:
    new = copy.deepcopy(doc)
    edit(asyncapi._payloads(new)[type_])
    return new


@pytest.mark.parametrize(("edit", "finding"), [
    (lambda p: p["properties"].pop("completed_at"), "field completed_at removed"),
    (lambda p: p["properties"]["version"].update(type="string"), "field version retyped"),
    (lambda p: p["properties"]["period"]["enum"].append("HOURLY"), "new values ['HOURLY']"),
    (lambda p: (p["properties"].update(note={"type": "string"}),
                p["required"].append("note")), "field note is newly required"),
    (lambda p: p["required"].remove("version"), "field version is no longer required"),
])
def test_a_breaking_change_to_a_released_type_is_found(
        current: dict[str, Any], edit: Callable[[dict[str, Any]], None], finding: str) -> None:
    problems = asyncapi.breaking_changes(current, changed(current, "goals.goal.completed",
                                                          edit))
    assert len(problems) == 1 and finding in problems[0], problems


def test_new_types_and_new_optional_fields_are_compatible_and_removed_types_are_not(
        current: dict[str, Any]) -> None:
    widened = changed(current, "goals.goal.completed",
                      lambda p: p["properties"].update(note={"type": "string"}))
    assert asyncapi.breaking_changes(current, widened) == []
    fewer = copy.deepcopy(current)
    del fewer["components"]["messages"]["diary_post_deleted"]
    assert asyncapi.breaking_changes(current, fewer) == [
        "diary.post.deleted: no longer sent (a released type stays until a release after "
        "its documented deprecation)"]
    assert asyncapi.breaking_changes(fewer, current) == []  # a new type


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_serves_the_events_it_sends_and_receives(
        client: Callable[[str], Any], service: str) -> None:
    answer = client(service).get(f"/{service}/asyncapi.json")
    assert answer.status_code == 200
    doc = answer.get_json()
    names = {m["name"] for m in doc["components"]["messages"].values()}
    sent = {t for t in CATALOGUE if asyncapi.producer(t) == service}
    assert names == sent | set(asyncapi.consumers()[service])
    assert set(doc["operations"]) <= {f"{service}_sends", f"{service}_receives"}
