"""What the studio shows: every table of every service, found in the services' own metadata.

Nothing here names a diary or goals table to make it appear. Each service's
`services.<svc>.models` is imported and every table of its `Base.metadata` (the messaging
tables too) is copied into a metadata of the studio's own (tagged with the service's bind
key, so the table is read through that service's connection) and mapped to a class made here.
Relations follow the foreign keys inside a schema, in both directions: `likes.post_id ->
posts.id` gives a like its `post` and a post its `likes`. The services' classes are never
used or changed; only their tables' shape is read.

Which columns are secret (never shown, searched, filtered, sorted or edited) is decided by
name (SECRET_NAME, SECRET_COLUMNS), so a new table's `reset_token_hash` is masked without
anyone listing it. Per-table browsing settings (FILTERS, SEARCH) are keyed by
"<schema>.<table>"; a table without one gets filters on every column that is not secret.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import registry, relationship

from shared.config import SERVICES

# Secrets by column name, whatever the table: password hashes, token hashes and OAuth
# tokens (token, session_token, access_token, refresh_token, id_token, *_token_hash),
# anything called a secret or a hash, signing material, and OAuth session state.
SECRET_NAME = re.compile(
    r"(^|_)password($|_)"
    r"|(^|_)token($|_hash$)"
    r"|_hash$"
    r"|secret"
    r"|(^|_)(private_key|signing_key|key_material|jwk|kid_private)($|_)"
    r"|^session_state$")
# Columns whose name says nothing but whose content is secret: a queued mail's body holds
# one-time links (verification, password reset) until it is sent.
SECRET_COLUMNS = frozenset({"auth.mail_outbox.body"})

# What a table is browsed by, where the default (every column that is not secret) is not
# the point: the seed's common questions.
FILTERS: dict[str, list[str]] = {
    "diary.posts": ["status", "author_id", "published_at", "created_at"],
    "goals.goals": ["user_id", "status", "period", "deadline"],
    "auth.users": ["email", "verified", "experience_level"],
}
SEARCH: dict[str, list[str]] = {
    "auth.users": ["email", "name"],
    "diary.posts": ["title", "content"],
    "goals.goals": ["title"],
}
# Column types Flask-Admin can filter on (not JSON, not arrays).
FILTERABLE = (sa.String, sa.Text, sa.Enum, sa.Boolean, sa.Integer, sa.DateTime, sa.Date,
              sa.Numeric)
# The column a row is named by in links and relation lists, first found wins.
LABELS = ("email", "title", "name", "provider", "type", "period", "content", "user_id")


def is_secret(table: sa.Table, column: str) -> bool:
    return bool(SECRET_NAME.search(column)) or f"{table.fullname}.{column}" in SECRET_COLUMNS


@dataclass
class Relation:
    name: str  # the attribute on the class
    target: str  # the related table's "<schema>.<table>"
    many: bool  # a list (the other side's foreign key points here) or one row
    # many: the target's foreign key column and the column of ours it holds
    via: tuple[str, str] | None = None


@dataclass
class Entry:
    """One table of one service, as the studio browses it."""

    service: str
    table: sa.Table
    model: type
    relations: list[Relation] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.table.fullname

    @property
    def endpoint(self) -> str:
        return f"{self.service}_{self.table.name}"

    @property
    def columns(self) -> list[str]:
        return [c.name for c in self.table.columns]

    @property
    def secrets(self) -> list[str]:
        return [c for c in self.columns if is_secret(self.table, c)]

    @property
    def visible(self) -> list[str]:
        return [c for c in self.columns if not is_secret(self.table, c)]

    @property
    def filters(self) -> list[str]:
        default = [c.name for c in self.table.columns
                   if isinstance(c.type, FILTERABLE) and not isinstance(c.type, sa.ARRAY)]
        return [c for c in FILTERS.get(self.key, default) if c in self.visible]

    @property
    def searchable(self) -> list[str]:
        default = [c.name for c in self.table.columns
                   if isinstance(c.type, sa.String | sa.Text) and c.name in self.visible]
        return [c for c in SEARCH.get(self.key, default) if c in self.visible]


def service_metadata(service: str) -> sa.MetaData:
    """The service's own metadata, from its models module (which the studio may import;
    nothing in services imports the studio)."""
    module = importlib.import_module(f"services.{service}.models")
    metadata = module.Base.metadata
    assert isinstance(metadata, sa.MetaData)
    return metadata


class Catalogue:
    """Every service's tables, mapped to classes of the studio's own registry."""

    def __init__(self, services: tuple[str, ...] = SERVICES) -> None:
        self.registry = registry()
        self.entries: dict[str, Entry] = {}
        for service in services:
            source = service_metadata(service)
            ours = sa.MetaData(schema=service, info={"bind_key": service})
            for table in source.sorted_tables:
                copy = table.to_metadata(ours)
                model = type(_class_name(service, table.name), (_Row,), {})
                self.entries[copy.fullname] = Entry(service, copy, model)
        for entry in self.entries.values():
            self._map(entry)
        self.registry.configure()

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries.values())

    def by_service(self) -> dict[str, list[Entry]]:
        grouped: dict[str, list[Entry]] = {}
        for entry in self:
            grouped.setdefault(entry.service, []).append(entry)
        for entries in grouped.values():
            entries.sort(key=lambda e: e.table.name)
        return grouped

    def _map(self, entry: Entry) -> None:
        properties: dict[str, Any] = {}
        # Many-to-one: this table's foreign keys to another table of the same schema.
        for fk in entry.table.foreign_key_constraints:
            parent = self.entries.get(fk.referred_table.fullname)
            if parent is None:
                continue
            local = [c for c in fk.columns]
            name = _free_name(properties, entry, local[0].name.removesuffix("_id"))
            properties[name] = relationship(parent.model, foreign_keys=local, viewonly=True)
            entry.relations.append(Relation(name, parent.key, many=False))
        # One-to-many: other tables' foreign keys to this one.
        for child in self.entries.values():
            for fk in child.table.foreign_key_constraints:
                if fk.referred_table is not entry.table:
                    continue
                local = [c for c in fk.columns]
                name = _free_name(properties, entry, child.table.name)
                properties[name] = relationship(
                    child.model, foreign_keys=local, viewonly=True,
                    order_by=list(child.table.primary_key.columns))
                via = (local[0].name, fk.elements[0].column.name) if len(local) == 1 else None
                entry.relations.append(Relation(name, child.key, many=True, via=via))
        self.registry.map_imperatively(entry.model, entry.table, properties=properties)


class _Row:
    """A row of a browsed table; named in links by its label column and primary key."""

    def __str__(self) -> str:
        table = sa.inspect(self).mapper.local_table
        assert isinstance(table, sa.Table)
        key = "/".join(str(getattr(self, c.name)) for c in table.primary_key.columns)
        label = next((c for c in LABELS if c in table.columns and not is_secret(table, c)),
                     None)
        text = getattr(self, label) if label else None
        if text is None:
            return key
        text = str(text)
        return f"{text[:60]}{'…' if len(text) > 60 else ''} ({key})"


def _class_name(service: str, table: str) -> str:
    return "".join(part.capitalize() for part in f"{service}_{table}".split("_"))


def _free_name(taken: dict[str, Any], entry: Entry, wanted: str) -> str:
    name, n = wanted, 2
    while name in taken or name in entry.table.columns:
        name, n = f"{wanted}_{n}", n + 1
    return name
