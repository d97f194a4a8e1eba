"""The event catalogue and the services' handlers agree (no infrastructure needed)."""

from __future__ import annotations

import importlib
import typing
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime
from typing import Any

import pytest
from marshmallow import fields, validate

from shared import events
from shared.config import SERVICES
from shared.consumer import Handler


def handlers_of(service: str) -> dict[str, Handler]:
    return dict(importlib.import_module(f"services.{service}.handlers").HANDLERS)


def test_every_handler_is_for_a_catalogue_type() -> None:
    for service in SERVICES:
        unknown = set(handlers_of(service)) - set(events.CATALOGUE)
        assert not unknown, f"{service} handles types outside the catalogue: {unknown}"
        assert all(isinstance(h, Handler) for h in handlers_of(service).values())


def test_every_catalogue_type_has_a_consumer_or_a_documented_reason() -> None:
    consumed = {type_ for service in SERVICES for type_ in handlers_of(service)}
    for type_ in events.CATALOGUE:
        assert type_ in consumed or events.UNCONSUMED.get(type_), (
            f"{type_} has no consumer and no reason in events.UNCONSUMED")
    assert not set(events.UNCONSUMED) & consumed, "a consumed type is listed as unconsumed"


@pytest.mark.parametrize("service", SERVICES)
def test_every_field_a_consumer_reads_is_one_its_producer_sends(service: str) -> None:
    """Consumer contracts: each handler declares the payload fields it reads; every one
    must be in the producer's schema (the catalogue's), so a producer that drops or renames
    a field somebody reads fails here, naming who."""
    for type_, handler in sorted(handlers_of(service).items()):
        assert handler.reads is not None, (
            f"{service}'s handler of {type_} declares no fields: each(fn, reads=(...))")
        sent = set(events.CATALOGUE[type_]._declared_fields)
        missing = sorted(handler.reads - sent)
        assert not missing, f"{service} reads {missing} of {type_}, which its producer lacks"


def test_a_dropped_field_that_a_consumer_reads_is_caught() -> None:
    """The check above can fail: goals without user_id in auth.user.deleted."""
    handler = handlers_of("goals")["auth.user.deleted"]
    assert handler.reads is not None
    sent = set(events.CATALOGUE["auth.user.deleted"]._declared_fields) - {"user_id"}
    assert handler.reads - sent == {"user_id"}


def sample(field: Any) -> Any:
    if isinstance(field, fields.DateTime):
        return datetime(2026, 12, 1, tzinfo=UTC)
    if isinstance(field, fields.Integer):
        return 1
    if isinstance(field, fields.List):
        return ["x"]
    choices = [v for v in field.validators if isinstance(v, validate.OneOf)]
    return next(iter(choices[0].choices)) if choices else "x"


@pytest.mark.parametrize("type_", sorted(events.CATALOGUE))
def test_each_payload_loads_into_its_frozen_dataclass(type_: str) -> None:
    schema = events.CATALOGUE[type_]()
    data = events.new_event(type_, {name: sample(f) for name, f in schema.fields.items()},
                            source="/tests").data
    assert isinstance(data, schema.model)
    assert set(typing.get_type_hints(schema.model)) == set(schema.fields)
    with pytest.raises(FrozenInstanceError):
        data.__setattr__(next(iter(schema.fields)), "changed")
