"""The event contracts as an AsyncAPI 3.0 document, generated from the catalogue.

    python -m shared.asyncapi            write docs/asyncapi.json (`make asyncapi`)
    python -m shared.asyncapi --check    exit 1 if docs/asyncapi.json is not current, or if
                                         the catalogue breaks a released contract
    python -m shared.asyncapi --release  also record it as docs/asyncapi.released.json, the
                                         contract later changes are held to

What it holds:
- channels: the topic exchange every event goes to (routing key = type) and each consuming
  service's queue, with its AMQP bindings (exchange type, quorum queue);
- operations: each producer's `send` of its types to the exchange, each consumer's `receive`
  from its queue;
- messages: one per event type, the CloudEvents 1.0 envelope as headers (structured mode:
  the envelope is the body, so the headers schema documents its attributes) and the
  payload's JSON Schema, converted from the marshmallow schema the producer validates with
  and the consumer loads with (shared.events.CATALOGUE): one source, so the document cannot
  drift from the code.

Compatibility: `breaking_changes(released, current)` compares the catalogue with the last
released document. A released type must still be sent; each of its fields must still be
there with the same type, format and (no new) enum values; no field may become required that
was not, nor stop being required. Anything else (a new type, a new optional field) is
compatible. A breaking change is made as a new type (`goals.goal.completed.v2`), the old one
still sent beside it for a period the README's event table states; only a `--release` after
that period may drop the old one.

Who consumes what comes from each service's handlers (`services.<svc>.handlers.HANDLERS`),
passed in by the caller: this module imports no service. A service serves its own part at
`/<svc>/asyncapi.json`: the messages it sends and the ones it receives.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from shared.bus import CONTENT_TYPE, Names
from shared.events import CATALOGUE
from shared.services import SERVICES

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "asyncapi.json"
RELEASED = DOCUMENT.with_name("asyncapi.released.json")
VERSION = "1.0.0"  # of the contracts; a breaking change is a new type, never a new meaning

ENVELOPE: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0, JSON structured mode (the whole envelope is the AMQP "
                   "body), plus correlation and causation ids. Consumers ignore unknown "
                   "attributes.",
    "required": ["specversion", "id", "source", "type", "time", "datacontenttype", "data"],
    "properties": {
        "specversion": {"type": "string", "const": "1.0"},
        "id": {"type": "string", "description": "unique per event; the consumers' inbox key"},
        "source": {"type": "string", "description": "the producing service, e.g. /goals"},
        "type": {"type": "string", "description": "the event type, also the routing key"},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"type": "string", "const": "application/json"},
        "subject": {"type": "string", "description": "the user the event is about"},
        "correlationid": {"type": "string",
                          "description": "the request or event that started the chain"},
        "causationid": {"type": "string", "description": "the request or event that caused "
                                                         "this one"},
        "data": {"description": "the payload (below)"},
    },
}


def producer(type_: str) -> str:
    """Event types are named `<producer>.<entity>.<what happened>`."""
    return type_.split(".", 1)[0]


def payload_schemas() -> dict[str, dict[str, Any]]:
    """Each type's payload as JSON Schema (apispec converts marshmallow schemas)."""
    plugin = MarshmallowPlugin()
    APISpec("events", VERSION, "3.1.0", plugins=[plugin])
    assert plugin.converter is not None
    schemas = {}
    for type_, schema in CATALOGUE.items():
        converted = plugin.converter.schema2jsonschema(schema)
        converted["additionalProperties"] = True  # producers may add fields
        schemas[type_] = converted
    return schemas


def consumers() -> dict[str, list[str]]:
    """Service -> the event types its worker handles (from its handlers module)."""
    found = {}
    for service in SERVICES:
        module = importlib.import_module(f"services.{service}.handlers")
        found[service] = sorted(module.HANDLERS)
    return found


def _key(type_: str) -> str:
    return type_.replace(".", "_")


def document(consumed: Mapping[str, Iterable[str]], *, service: str | None = None,
             namespace: str = "growth") -> dict[str, Any]:
    """The whole system's document, or (`service`) what that service sends and receives."""
    names = Names(namespace)
    consumed = {svc: sorted(types) for svc, types in consumed.items()}
    schemas = payload_schemas()
    sent = sorted(t for t in CATALOGUE if service in (None, producer(t)))
    received = sorted(consumed.get(service, [])) if service else []
    types = sorted(set(sent) | set(received)) if service else sorted(CATALOGUE)

    def ref(kind: str, name: str) -> dict[str, str]:
        return {"$ref": f"#/{kind}/{name}"}

    channels: dict[str, Any] = {"events": {
        "address": names.events,
        "description": "Every event, routing key = its type (a topic exchange); a resync's "
                       "snapshots and completion go to the asker alone, under "
                       "to.<asker>.<type> (its queue binds to.<asker>.#).",
        "messages": {_key(t): ref("components/messages", _key(t)) for t in types},
        "bindings": {"amqp": {"is": "routingKey", "exchange": {
            "name": names.events, "type": "topic", "durable": True, "autoDelete": False,
            "vhost": "/"}, "bindingVersion": "0.3.0"}},
    }}
    operations: dict[str, Any] = {}
    for producing in sorted({producer(t) for t in sent}):
        own = [t for t in sent if producer(t) == producing]
        operations[f"{producing}_sends"] = {
            "action": "send", "channel": ref("channels", "events"),
            "summary": f"{producing} publishes these through its transactional outbox",
            "messages": [ref("channels/events/messages", _key(t)) for t in own],
            # persistent, publisher-confirmed
            "bindings": {"amqp": {"deliveryMode": 2, "mandatory": False,
                                  "bindingVersion": "0.3.0"}}}
    for consuming, handled in sorted(consumed.items()):
        if service and consuming != service:
            continue
        handled = [t for t in handled if t in CATALOGUE]
        if not handled:
            continue
        channel = f"{consuming}_queue"
        channels[channel] = {
            "address": names.queue(consuming),
            "description": f"{consuming}'s own queue, bound to the types it handles; retries "
                           f"and dead letters beside it ({names.dead_queue(consuming)}).",
            "messages": {_key(t): ref("components/messages", _key(t)) for t in handled},
            "bindings": {"amqp": {"is": "queue", "queue": {
                "name": names.queue(consuming), "durable": True, "exclusive": False,
                "autoDelete": False, "vhost": "/"}, "bindingVersion": "0.3.0"}},
        }
        operations[f"{consuming}_receives"] = {
            "action": "receive", "channel": ref("channels", channel),
            "summary": f"{consuming}'s worker applies these, idempotently (its inbox)",
            "messages": [ref(f"channels/{channel}/messages", _key(t)) for t in handled]}
    messages = {_key(t): {
        "name": t, "title": t, "contentType": CONTENT_TYPE,
        "summary": f"sent by {producer(t)}; received by "
                   f"{', '.join(s for s, h in sorted(consumed.items()) if t in h) or 'nobody yet'}",
        "headers": ref("components/schemas", "CloudEventsEnvelope"),
        "payload": ref("components/schemas", _key(t)),
        "bindings": {"amqp": {"messageType": t, "bindingVersion": "0.3.0"}},
    } for t in types}
    title = f"Growth Diary: {service}'s events" if service else "Growth Diary events"
    return {
        "asyncapi": "3.0.0",
        "info": {"title": title, "version": VERSION,
                 "description": "Generated from shared/events.py (python -m shared.asyncapi);"
                                " see DESIGN.md's event catalogue."},
        "defaultContentType": CONTENT_TYPE,
        "servers": {"rabbitmq": {"host": "localhost:5672", "protocol": "amqp",
                                 "protocolVersion": "0.9.1"}},
        "channels": channels,
        "operations": operations,
        "components": {"schemas": {"CloudEventsEnvelope": ENVELOPE,
                                   **{_key(t): schemas[t] for t in types}},
                       "messages": messages},
    }


def _payloads(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Event type -> its payload schema, as a document lists them."""
    schemas = doc["components"]["schemas"]
    return {m["name"]: schemas[m["payload"]["$ref"].rsplit("/", 1)[1]]
            for m in doc["components"]["messages"].values()}


def _types(prop: Mapping[str, Any]) -> set[str]:
    kind = prop.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def breaking_changes(released: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What in `current` would break a consumer or producer of the `released` contracts."""
    before, after = _payloads(released), _payloads(current)
    problems = []
    for type_, old in sorted(before.items()):
        new = after.get(type_)
        if new is None:
            problems.append(f"{type_}: no longer sent (a released type stays until a release "
                            "after its documented deprecation)")
            continue
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
        for name, prop in sorted(old_props.items()):
            if name not in new_props:
                problems.append(f"{type_}: field {name} removed")
                continue
            now = new_props[name]
            if _types(prop) != _types(now) or prop.get("format") != now.get("format"):
                problems.append(f"{type_}: field {name} retyped "
                                f"({sorted(_types(prop))} -> {sorted(_types(now))})")
            added = set(now.get("enum", [])) - set(prop.get("enum", []))
            if "enum" in prop and added:
                problems.append(f"{type_}: field {name} has new values {sorted(added)}")
        for name in sorted(new_req - old_req):
            problems.append(f"{type_}: field {name} is newly required (events already sent "
                            "lack it)")
        for name in sorted((old_req - new_req) & set(new_props)):
            problems.append(f"{type_}: field {name} is no longer required (consumers count "
                            "on it)")
    return problems


def render(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.asyncapi",
                                     description="write docs/asyncapi.json from the catalogue")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="exit 1 if the committed document is stale or breaks the release")
    mode.add_argument("--release", action="store_true",
                      help="also record the document as the released contract")
    args = parser.parse_args(argv)
    doc = document(consumers())
    text = render(doc)
    if RELEASED.exists() and not args.release:
        problems = breaking_changes(json.loads(RELEASED.read_text()), doc)
        if problems:
            print("breaking changes against docs/asyncapi.released.json:\n  "
                  + "\n  ".join(problems), file=sys.stderr)
            return 1
    if args.check:
        if not DOCUMENT.exists() or DOCUMENT.read_text() != text:
            print(f"{DOCUMENT} is stale: run `make asyncapi`", file=sys.stderr)
            return 1
        return 0
    DOCUMENT.parent.mkdir(exist_ok=True)
    DOCUMENT.write_text(text)
    print(f"wrote {DOCUMENT}")
    if args.release:
        RELEASED.write_text(text)
        print(f"wrote {RELEASED}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
