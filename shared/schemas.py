"""The base of every HTTP schema: marshmallow, with its dump compiled for the read path.

marshmallow stays at the edge for validation and OpenAPI. Dumping a page of objects through
it costs about as much as the query that loaded them (a field object, an accessor and a
serialize call per value), so `Schema.dump` runs a plain function compiled once per schema
from its declared fields instead: the same output (tests compare the two on every response
schema), or marshmallow itself wherever a schema uses something the compiler does not know
(hooks, only/exclude, custom fields: those are serialized by the field as usual).
"""

from __future__ import annotations

import datetime as dt
import enum
import operator
from collections.abc import Callable
from typing import Any

import marshmallow as ma
from marshmallow import fields
from marshmallow.utils import ensure_text_type

_MISSING = ma.missing
Convert = Callable[[Any], Any]
Dumper = Callable[[Any], dict[str, Any]]


def _read(obj: Any, name: str) -> Any:
    """marshmallow's accessor for a plain attribute name: a key of a mapping, else an
    attribute; `_MISSING` when neither is there (the key is then left out)."""
    if hasattr(obj, "__getitem__"):
        try:
            return obj[name]
        except (KeyError, IndexError, TypeError, AttributeError):
            pass
    return getattr(obj, name, _MISSING)


def _iso(value: dt.datetime | dt.date) -> str:
    return value.isoformat()


def _enum_name(value: enum.Enum) -> Any:
    return value.name


def _enum_value(value: enum.Enum) -> Any:
    return value.value


def _converter(field: Any) -> Convert | None:
    """A function that serializes a present, non-None value as `field` would; None when
    this field has to be asked itself."""
    kind = type(field)
    if kind is fields.String:
        return lambda v: v if type(v) is str else ensure_text_type(v)
    if kind is fields.Integer and not field.as_string:
        return int
    if kind in (fields.DateTime, fields.AwareDateTime, fields.NaiveDateTime, fields.Date):
        return _iso if field.format in ("iso", "iso8601") else None  # bound: format is set
    if kind is fields.Enum:
        if field.by_value is False:
            return _enum_name
        return _enum_value if field.by_value is True else None
    if kind in (fields.Raw, fields.Boolean):  # marshmallow dumps both as they are
        return lambda v: v
    if kind is fields.Nested:
        nested = field.schema
        if not isinstance(nested, Schema) or field.only or field.exclude:
            return None
        dumper = nested.compiled_dumper()
        if dumper is None:
            return None
        if field.many or nested.many:
            return lambda v: [dumper(item) for item in v]
        return dumper
    if kind is fields.List:
        inner = _converter(field.inner)
        if inner is None:
            return None
        return lambda v: [None if item is None else inner(item) for item in v]
    return None


class Schema(ma.Schema):
    """A marshmallow schema whose `dump` is compiled (see the module's docstring)."""

    _compiled: Dumper | None | bool = False  # False: not compiled yet

    def compiled_dumper(self) -> Dumper | None:
        if self._compiled is False:
            self._compiled = self._compile()
        return self._compiled  # type: ignore[return-value]

    def _compile(self) -> Dumper | None:
        if self.only or self.exclude or self._hooks.get(ma.decorators.PRE_DUMP) or \
                self._hooks.get(ma.decorators.POST_DUMP):
            return None
        plan: list[tuple[str, str, Convert | None, fields.Field]] = []
        for name, field in self.dump_fields.items():
            attribute = field.attribute or name
            if "." in attribute:
                return None
            plan.append((field.data_key or name, attribute, _converter(field), field))
        accessor = self.get_attribute

        def dump_any(obj: Any) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for key, attribute, convert, field in plan:
                if convert is None:
                    value = field.serialize(attribute, obj, accessor=accessor)
                    if value is not _MISSING:
                        out[key] = value
                    continue
                value = _read(obj, attribute)
                if value is _MISSING:
                    continue
                out[key] = None if value is None else convert(value)
            return out

        if not plan or any(convert is None for _, _, convert, _ in plan):
            return dump_any
        # Objects (rows, dataclasses): every attribute read in one C call.
        keys = [key for key, _, _, _ in plan]
        converters = [convert for _, _, convert, _ in plan if convert is not None]
        read_all = operator.attrgetter(*[attribute for _, attribute, _, _ in plan])
        single = len(plan) == 1

        def dump(obj: Any) -> dict[str, Any]:
            if hasattr(obj, "__getitem__"):
                return dump_any(obj)
            try:
                values = read_all(obj)
            except AttributeError:
                return dump_any(obj)  # some attribute is absent: its key is left out
            if single:
                values = (values,)
            return {key: None if value is None else convert(value)
                    for key, convert, value in zip(keys, converters, values, strict=True)}

        return dump

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        dumper = self.compiled_dumper()
        if dumper is None:
            return super().dump(obj, many=many)
        if self.many if many is None else many:
            return [dumper(item) for item in obj]
        return dumper(obj)
