"""The compiled dump of shared.schemas.Schema gives exactly marshmallow's output, for every
response schema of every service, for objects, mappings, None values and absent keys."""

from __future__ import annotations

import enum
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from marshmallow import fields

from shared.config import SERVICES
from shared.schemas import Schema


@contextmanager
def plain_marshmallow() -> Iterator[None]:
    """Every shared Schema dumps through marshmallow itself while this is open."""
    original = Schema.compiled_dumper
    Schema.compiled_dumper = lambda self: None  # type: ignore[method-assign,assignment,return-value]
    try:
        yield
    finally:
        Schema.compiled_dumper = original  # type: ignore[method-assign]


def schema_modules() -> list[str]:
    """Every `schemas` module of every service, feature packages included."""
    names = []
    for service in SERVICES:
        package = importlib.import_module(f"services.{service}")
        for info in pkgutil.walk_packages(package.__path__, f"services.{service}."):
            if info.name.endswith(".schemas") and ".migrations" not in info.name:
                names.append(info.name)
    return names


def response_schemas() -> list[type[Schema]]:
    found: list[type[Schema]] = []
    for name in schema_modules():
        module = importlib.import_module(name)
        found += [obj for _, obj in inspect.getmembers(module, inspect.isclass)
                  if issubclass(obj, Schema) and obj is not Schema
                  and obj.__module__ == module.__name__]
    return found


def sample_value(field: Any, variant: int) -> Any:
    if isinstance(field, fields.Nested):
        nested = field.schema
        value = sample_object(nested, variant)
        return [value, sample_object(nested, variant + 1)] if field.many else value
    if isinstance(field, fields.List):
        return [sample_value(field.inner, variant), sample_value(field.inner, variant + 1)]
    if isinstance(field, fields.Enum):
        members: list[Any] = list(field.enum.__members__.values())
        return members[variant % len(members)]
    if isinstance(field, fields.DateTime):
        return datetime(2026, 12, 1, 8, variant % 60, 5, 123456, tzinfo=UTC)
    if isinstance(field, fields.Date):
        return date(2026, 12, 1 + variant % 28)
    if isinstance(field, fields.Integer):
        return 7 + variant
    if isinstance(field, fields.Boolean):
        return variant % 2 == 0
    if isinstance(field, fields.Dict):
        return {"k": [f"v{variant}"]}
    return f"text {variant} é"


def sample_object(schema: Any, variant: int) -> Any:
    values: dict[str, Any] = {}
    for name, field in schema.dump_fields.items():
        attribute = field.attribute or name
        if variant % 3 == 1 and not isinstance(field, fields.Nested | fields.List):
            values[attribute] = None
        else:
            values[attribute] = sample_value(field, variant)
    if variant % 3 == 2:
        # An absent key: left out. (Not one that names a dict method: marshmallow would
        # read the method instead, for any schema.)
        absent = [key for key in values if not hasattr(dict, key)][-1:]
        for key in absent:
            del values[key]
        return values  # a mapping
    return SimpleNamespace(**values)


SCHEMAS = response_schemas()


def test_the_services_response_schemas_use_the_shared_base() -> None:
    assert {"GoalSchema", "GoalPageSchema", "PostSchema", "StorySchema", "ProfileSchema",
            "AdapterUserSchema", "LoginResultSchema"} <= {s.__name__ for s in SCHEMAS}


@pytest.mark.parametrize("schema_class", SCHEMAS, ids=lambda s: s.__name__)
@pytest.mark.parametrize("variant", range(6))
def test_compiled_dump_equals_marshmallows(schema_class: type[Schema], variant: int) -> None:
    schema = schema_class()
    obj = sample_object(schema, variant)
    fast = schema.dump(obj)
    with plain_marshmallow():
        reference = schema_class().dump(obj)
    assert fast == reference
    assert list(fast) == list(reference)  # the same keys in the same order


class Colour(enum.StrEnum):
    RED = "red"


class Size(enum.Enum):
    BIG = 1


@dataclass(frozen=True)
class Thing:
    name: str
    colour: Colour
    size: Size
    at: datetime
    count: int


class ThingSchema(Schema):
    name = fields.String()
    shade = fields.Enum(Colour, attribute="colour", by_value=True)
    size = fields.Enum(Size)
    at = fields.AwareDateTime()
    count = fields.Integer()
    upper = fields.Method("shout")  # not compiled: marshmallow serializes it

    def shout(self, obj: Thing) -> str:
        return obj.name.upper()


def test_fields_the_compiler_does_not_know_fall_back_to_marshmallow() -> None:
    thing = Thing("ada", Colour.RED, Size.BIG, datetime(2026, 1, 2, tzinfo=UTC), 3)
    out = ThingSchema(many=True).dump([thing])
    with plain_marshmallow():
        assert out == ThingSchema(many=True).dump([thing])
    assert out == [{"name": "ada", "shade": "red", "size": "BIG",
                    "at": "2026-01-02T00:00:00+00:00", "count": 3, "upper": "ADA"}]


def test_rows_dump_like_the_objects_they_stand_for() -> None:
    """A list reads rows (shared.pagination); a row's attributes are its columns."""
    from sqlalchemy import DateTime, Enum, create_engine, literal, select

    from services.goals.models import GoalPeriod, GoalStatus
    from services.goals.schemas import GoalPageSchema, GoalSchema

    at = datetime(2026, 12, 1, 9, 30, 5, 120000)
    columns: list[Any] = [
        literal("g1").label("id"), literal("u1").label("user_id"),
        literal("Ship it").label("title"),
        literal("WEEKLY", Enum(GoalPeriod)).label("period"),
        literal("ACTIVE", Enum(GoalStatus)).label("status"),
        *[literal(at, DateTime()).label(name)
          for name in ("start_date", "deadline", "created_at", "updated_at")],
        literal(None, DateTime()).label("completed_at"), literal(2).label("version")]
    with create_engine("sqlite://").connect() as conn:
        row = conn.execute(select(*columns)).one()
    assert row.period is GoalPeriod.WEEKLY
    page = SimpleNamespace(items=[row, row], next_cursor="c")
    fast = GoalPageSchema().dump(page)
    with plain_marshmallow():
        assert fast == GoalPageSchema().dump(page)
        assert fast["items"][0] == GoalSchema().dump(SimpleNamespace(**row._asdict()))
    assert fast["items"][0]["period"] == "WEEKLY" and fast["items"][0]["completedAt"] is None
