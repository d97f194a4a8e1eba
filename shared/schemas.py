"""The base of every HTTP schema: marshmallow, with its dump compiled for the read path.

marshmallow stays at the edge for validation and OpenAPI. Dumping a page of objects through
it costs about as much as the query that loaded them (a field object, an accessor and a
serialize call per value), so `Schema.dump` runs a plain function compiled once per schema
from its declared fields instead: the same output (tests compare the two on every response
schema), or marshmallow itself wherever a schema uses something the compiler does not know
(hooks, only/exclude, custom fields: those are serialized by the field as usual).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

import marshmallow as ma
from marshmallow import fields
from marshmallow.utils import ensure_text_type
from sqlalchemy import Row

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


_isoformat = operator.methodcaller("isoformat")


def _identity(value: Any) -> Any:
    return value


class _AsIs:
    """Stands for "any type": a value of a field dumped as it is is never converted."""


def _converter(field: Any) -> tuple[Convert, type] | None:
    """How `field` serializes a present, non-None value: a conversion, and the type whose
    values it leaves as they are (checked first: no call for them). None when the field
    has to be asked itself. Conversions are C-level calls where they can be."""
    kind = type(field)
    if kind is fields.String:
        return ensure_text_type, str
    if kind is fields.Integer and not field.as_string:
        return int, int
    if kind in (fields.DateTime, fields.AwareDateTime, fields.NaiveDateTime, fields.Date):
        if field.format not in ("iso", "iso8601"):  # bound fields: format is set
            return None
        return _isoformat, _AsIs
    if kind is fields.Enum:
        if field.by_value not in (True, False):
            return None
        table = {m: m.value if field.by_value else m.name for m in field.enum}
        return table.__getitem__, _AsIs
    if kind is fields.Boolean:  # marshmallow dumps it as it is
        return _identity, bool
    if kind is fields.Raw:
        return _identity, _AsIs
    if kind is fields.Nested:
        nested = field.schema
        if not isinstance(nested, Schema) or field.only or field.exclude:
            return None
        dumper = nested.compiled_dumper()
        if dumper is None:
            return None
        if field.many or nested.many:
            return (lambda v: [dumper(item) for item in v]), _AsIs
        return dumper, _AsIs
    if kind is fields.List:
        inner = _converter(field.inner)
        if inner is None:
            return None
        convert, as_is = inner
        return (lambda v: [item if item is None or type(item) is as_is else convert(item)
                           for item in v]), _AsIs
    return None


def _build_dict(steps: list[tuple[str, Convert, type]]) -> Callable[[Any], dict[str, Any]]:
    """A function from the tuple of a schema's values (what attrgetter or itemgetter reads,
    in field order) to its JSON-ready dict, written out as one dict display: a loop over
    the fields would cost as much again (the way dataclasses and attrs generate their
    methods). Each value goes out as it is when None or already of its JSON type."""
    names: dict[str, Any] = {"_AsIs": _AsIs}
    entries = []
    for i, (key, convert, as_is) in enumerate(steps):
        names[f"c{i}"], names[f"t{i}"] = convert, as_is
        if convert is _identity:
            entries.append(f"{key!r}: v{i}")
        elif as_is is _AsIs:
            entries.append(f"{key!r}: None if v{i} is None else c{i}(v{i})")
        else:
            entries.append(f"{key!r}: v{i} if v{i} is None or type(v{i}) is t{i} "
                           f"else c{i}(v{i})")
    values = ", ".join(f"v{i}" for i in range(len(steps)))
    unpack = f"{values} = values" if len(steps) == 1 else f"({values},) = values"
    source = (f"def build(values):\n    {unpack}\n"
              f"    return {{{', '.join(entries)}}}\n")
    exec(compile(source, "<compiled dump>", "exec"), names)  # noqa: S102 - our own source
    return names["build"]  # type: ignore[no-any-return]


NUL_MESSAGE = "Must not contain NUL characters."
SURROGATE_MESSAGE = "Must be valid Unicode text (it holds a lone surrogate)."


def _unstorable(value: str) -> str | None:
    """Why PostgreSQL (NUL) or UTF-8 (a lone surrogate, e.g. JSON "\\ud800") cannot take
    this text, or None."""
    if "\x00" in value:
        return NUL_MESSAGE
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_MESSAGE
    return None


def _text_errors(data: Any) -> Any:
    """The messages for every string in `data` (nested mappings and lists included) that
    could not be stored, shaped as marshmallow shapes field errors; None when all are fine."""
    if isinstance(data, str):
        reason = _unstorable(data)
        return [reason] if reason else None
    items: Any = data.items() if isinstance(data, Mapping) else (
        enumerate(data) if isinstance(data, list) else ())
    errors = {key: found for key, value in items if (found := _text_errors(value))}
    return errors or None


class Schema(ma.Schema):
    """A marshmallow schema whose `dump` is compiled (see the module's docstring), and
    whose load refuses text that cannot be stored (NUL characters, lone surrogates) in any
    field, before a field sees it: one rule for every string of every schema."""

    @ma.pre_load
    def _refuse_unstorable_text(self, data: Any, **_: Any) -> Any:
        if isinstance(data, Mapping | list) and (errors := _text_errors(data)):
            raise ma.ValidationError(errors)
        return data

    _compiled: Dumper | None | bool = False  # False: not compiled yet

    def compiled_dumper(self) -> Dumper | None:
        if self._compiled is False:
            self._compiled = self._compile()
        return self._compiled  # type: ignore[return-value]

    def _compile(self) -> Dumper | None:
        if self.only or self.exclude or self._hooks.get(ma.decorators.PRE_DUMP) or \
                self._hooks.get(ma.decorators.POST_DUMP):
            return None
        plan: list[tuple[str, str, tuple[Convert, type] | None, fields.Field]] = []
        for name, field in self.dump_fields.items():
            attribute = field.attribute or name
            if "." in attribute:
                return None
            plan.append((field.data_key or name, attribute, _converter(field), field))
        accessor = self.get_attribute

        def dump_any(obj: Any) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for key, attribute, how, field in plan:
                if how is None:
                    value = field.serialize(attribute, obj, accessor=accessor)
                    if value is not _MISSING:
                        out[key] = value
                    continue
                value = _read(obj, attribute)
                if value is _MISSING:
                    continue
                convert, as_is = how
                out[key] = value if value is None or type(value) is as_is else convert(value)
            return out

        if not plan or any(how is None for _, _, how, _ in plan):
            return dump_any
        attributes = [attribute for _, attribute, _, _ in plan]
        build = _build_dict([(key, *how) for key, _, how, _ in plan if how is not None])
        read_attributes = operator.attrgetter(*attributes)
        read_row: dict[tuple[str, ...], Callable[[Any], Any]] = {}  # by the row's columns

        def dump(obj: Any) -> dict[str, Any]:
            # marshmallow reads a key of anything with __getitem__, else an attribute; a
            # row refuses string keys, so for a row too it is the attribute, and a row's
            # attribute is its column: read by position, in C.
            if isinstance(obj, Row):
                columns = obj._fields
                read = read_row.get(columns)
                if read is None:
                    if not set(attributes) <= set(columns):
                        return dump_any(obj)
                    read = read_row[columns] = operator.itemgetter(
                        *[columns.index(a) for a in attributes])
                return build(read(obj))
            if hasattr(obj, "__getitem__"):
                return dump_any(obj)
            try:
                values = read_attributes(obj)
            except AttributeError:
                return dump_any(obj)  # some attribute is absent: its key is left out
            return build(values)

        return dump

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        dumper = self.compiled_dumper()
        if dumper is None:
            return super().dump(obj, many=many)
        if self.many if many is None else many:
            return [dumper(item) for item in obj]
        return dumper(obj)
