"""The event catalogue and the services' handlers agree (no infrastructure needed)."""

from __future__ import annotations

import importlib
import typing
from datetime import UTC, datetime

import pytest

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


@pytest.mark.parametrize("type_", sorted(events.CATALOGUE))
def test_each_payload_loads_into_its_frozen_dataclass(type_: str) -> None:
    schema = events.CATALOGUE[type_]
    model = schema.model
    hints = typing.get_type_hints(model)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    sample = {name: (now if hint is datetime or hint == datetime | None else
                     1 if hint in (int, int | None) else
                     [] if "list" in str(hint) else "x")
              for name, hint in hints.items()}
    data = events.new_event(type_, sample, source="/tests").data
    assert isinstance(data, model)
    with pytest.raises(AttributeError):
        data.__setattr__(next(iter(hints)), "changed")
