"""The one way to get a database session, and the unit of work that commits it.

Each service has its own `MetaData(schema=...)` with a naming convention (stable Alembic
names), and the messaging tables every service needs: outbox, inbox, user tombstones and
access-token revocations.

The transaction rule, followed everywhere:
- A use case takes a unit of work it has not entered, opens it (`with uow:`), does its work
  and calls `uow.commit()`. What it calls (helpers, repositories, handlers' internals) only
  adds and flushes; nothing below the use case commits.
- A read takes the unit of work too, as `with uow.read_only():`. It runs without a
  transaction (each statement autocommits, one snapshot per statement), so a read costs its
  queries' round trips and no BEGIN/ROLLBACK pair. A read that needs one snapshot for
  several statements uses `with uow:` and never commits.
- Leaving the block rolls back whatever was not committed.
- Events are recorded with `uow.publish()` and written to the outbox in the same transaction
  at commit; the outbox's trigger NOTIFYs the relay, which PostgreSQL delivers at commit.
- The one documented exception: login (and the password change) commits its throttle
  counter early, and registration its abuse-limit slot (services/auth).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, make_dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, cast

import psycopg
from psycopg.rows import args_row
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    MetaData,
    Select,
    String,
    Table,
    create_engine,
    func,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from shared import events as ev
from shared.errors import NotFound

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# A session's `info` key: it reads in autocommit (UnitOfWork.read_only), so a statement
# run on a bare pooled connection means the same as one run through the session.
AUTOCOMMIT = "autocommit"


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_database_outage(error: BaseException) -> bool:
    """The database went away (restart, network), which is nobody's bug: a request answers
    503 and may be retried, a consumer holds its batch."""
    return isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)) or (
        isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated
    )


def first_or_not_found(session: Session, query: Select[Any], detail: str, *,
                       lock: bool = False) -> Any:
    """The first row `query` selects (locked FOR UPDATE with `lock`), or NotFound: how
    every "no such thing" is said, also for what exists but belongs to someone else, which
    must look the same."""
    if lock:
        query = query.with_for_update()
    found = session.scalars(query.limit(1)).first()
    if found is None:
        raise NotFound(detail)
    return found


@dataclass(frozen=True)
class _Compiled:
    sql: str
    defaults: dict[str, Any]
    row: Any  # psycopg row factory: the default row, a slotted object per column name


_COMPILED: dict[int, tuple[Select[Any], _Compiled]] = {}
_ROWS: dict[Callable[..., Any], Any] = {}  # psycopg row factories of the `row`s asked for


def fetch(session: Session, statement: Select[Any], values: dict[str, Any] | None = None, *,
          row: Callable[..., Any] | None = None) -> list[Any]:
    """The rows of a statement built once (at import), straight from psycopg: SQLAlchemy
    compiles it once per process and is not asked again per call, which halves what the
    process adds to a read (measured by bench/diary.py and bench/http.py). For the reads
    every request makes; anything else goes through the session as usual.

    A row is made by `row` from the values in column order (default: a slotted object with
    the statement's column names as attributes), so schemas dump it like a Row or a model.
    In a read-only unit of work a statement runs on a pooled connection of its own, in
    autocommit (PostgreSQL's snapshot per statement, as the session would give it). Errors
    come out as SQLAlchemy's (an outage is still a 503); a broken connection is invalidated.
    """
    found = _COMPILED.get(id(statement))
    if found is None or found[0] is not statement:
        compiled = statement.compile(dialect=session.get_bind().dialect)
        names = [str(column.key) for column in statement.selected_columns]
        found = _COMPILED[id(statement)] = (statement, _Compiled(
            str(compiled), dict(compiled.params),
            args_row(make_dataclass("FetchedRow", names, slots=True))))
    plan = found[1]
    factory = plan.row
    if row is not None:
        factory = _ROWS.get(row) or _ROWS.setdefault(row, args_row(row))
    params = {**plan.defaults, **(values or {})}
    if session.info.get(AUTOCOMMIT) and not session.in_transaction():
        # Without the session's connection and isolation-level bookkeeping around it.
        engine = cast(Engine, session.get_bind())
        try:
            pooled = engine.raw_connection()
        except psycopg.Error as error:  # cannot connect: an outage, as the session says it
            raise sa_exc.DBAPIError.instance(None, None, error, psycopg.Error,
                                             connection_invalidated=True) from error
        try:
            dbapi = cast(psycopg.Connection[Any], pooled.dbapi_connection)
            dbapi.autocommit = True
            try:
                return _run(dbapi, plan.sql, params, factory,
                            lambda error: engine.pool._invalidate(pooled, error))
            finally:
                if not dbapi.broken:
                    dbapi.autocommit = False
        finally:
            pooled.close()
    connection = session.connection()
    pooled = connection.connection
    dbapi = cast(psycopg.Connection[Any], pooled.dbapi_connection)

    def disconnected(error: BaseException) -> None:
        connection.engine.pool._invalidate(pooled, error, _checkin=False)
        connection.invalidate(error)

    return _run(dbapi, plan.sql, params, factory, disconnected)


def fetch_one(session: Session, statement: Select[Any], values: dict[str, Any], detail: str,
              *, row: Callable[..., Any] | None = None) -> Any:
    """The one row `fetch` finds, or NotFound (see `first_or_not_found`)."""
    rows = fetch(session, statement, values, row=row)
    if not rows:
        raise NotFound(detail)
    return rows[0]


def _run(dbapi: psycopg.Connection[Any], sql: str, params: dict[str, Any], factory: Any,
         disconnected: Callable[[BaseException], None]) -> list[Any]:
    try:
        with dbapi.cursor(row_factory=factory) as cur:
            return list(cur.execute(sql, params).fetchall())
    except psycopg.Error as error:
        if dbapi.broken:
            # What SQLAlchemy does on a disconnect: this connection is dropped, and so is
            # every pooled one older than the failure (each would fail its next statement).
            disconnected(error)
        raise sa_exc.DBAPIError.instance(sql, None, error, psycopg.Error,
                                         hide_parameters=True,
                                         connection_invalidated=dbapi.broken) from error


def service_metadata(schema: str) -> MetaData:
    metadata = MetaData(schema=schema, naming_convention=NAMING_CONVENTION)
    messaging_tables(metadata)
    return metadata


def messaging_tables(metadata: MetaData) -> None:
    """Outbox, inbox, tombstones and token revocations: the same shape in every service's
    own schema."""
    Table(
        "outbox",
        metadata,
        Column("seq", BigInteger, Identity(always=True), primary_key=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("type", String(128), nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("sent_at", DateTime(timezone=True)),
        # Where the relay publishes the row: its type when NULL (every live event); an
        # address only one queue binds for what is meant for one service (shared.resync).
        Column("routing_key", String(255)),
        Index("ix_outbox_unsent", "seq", postgresql_where=text("sent_at IS NULL")),
        Index("ix_outbox_sent_at", "sent_at", postgresql_where=text("sent_at IS NOT NULL")),
    )
    Table(
        "inbox",
        metadata,
        Column("consumer", String(64), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("type", String(128), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index("ix_inbox_processed_at", "processed_at"),
    )
    Table(
        "deleted_user",
        metadata,
        Column("user_id", String(64), primary_key=True),
        Column("deleted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        # What web processes load into their in-memory set (shared.tombstones).
        Index("ix_deleted_user_deleted_at", "deleted_at"),
    )
    Table(
        "resync",
        metadata,
        # One rebuild of a read model (shared.resync): on the asking service, when it asked
        # (the rows of the producer's entity not confirmed since are stale at completion);
        # on the producer, how far its answer has gone (keyset cursor, snapshots sent).
        Column("request_id", String(64), primary_key=True),
        Column("asker", String(32), nullable=False),
        Column("producer", String(32), nullable=False),
        Column("requested_at", DateTime(timezone=True), nullable=False,
               server_default=func.now()),
        Column("cursor", String(64)),
        Column("sent", BigInteger, nullable=False, server_default="0"),
        Column("removed", BigInteger),
        Column("completed_at", DateTime(timezone=True)),
    )
    Table(
        "revoked_token",
        metadata,
        Column("user_id", String(64), primary_key=True),
        # The user's access tokens issued before this instant are refused (shared.tombstones).
        Column("revoked_at", DateTime(timezone=True), nullable=False),
        Index("ix_revoked_token_revoked_at", "revoked_at"),
    )


class EagerDefaults:
    """For each service's declarative base: server-side values (defaults, `updated_at`)
    come back with RETURNING at flush, so objects stay readable after their unit of work
    has closed."""

    __mapper_args__ = {"eager_defaults": True}


class Timestamps:
    """`created_at` and `updated_at`, kept by the database (the ORM sets `updated_at` on
    every UPDATE it issues). A mixin for the seed's models that have both."""

    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now())


class Database:
    """One engine and session factory per process, created by the app factory or worker."""

    def __init__(self, url: str, schema: str, *, pool_size: int = 5) -> None:
        self.schema = schema
        self.engine: Engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            # No pre-ping: it costs a round trip on every checkout. A connection the
            # database dropped fails its first statement instead; SQLAlchemy then discards
            # every pooled connection older than the failure, and the request answers 503.
            pool_pre_ping=False,
            pool_recycle=1800,
            # Statement parameters (hashes, tokens, personal data) never reach logs.
            hide_parameters=True,
            connect_args={
                "connect_timeout": 5,
                "options": f"-c search_path={schema}",
            },
        )
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Reads: the connection in autocommit, so no BEGIN ... ROLLBACK around a SELECT.
        self.read_sessions = sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"),
            expire_on_commit=False, info={AUTOCOMMIT: True})
        self.outbox = metadata_table(schema, "outbox")
        self.inbox = metadata_table(schema, "inbox")
        self.tombstones = metadata_table(schema, "deleted_user")
        self.revocations = metadata_table(schema, "revoked_token")
        self.resyncs = metadata_table(schema, "resync")

    @property
    def notify_channel(self) -> str:
        return f"outbox_{self.schema}"

    def listen(self, *channels: str) -> psycopg.Connection[Any]:
        """A dedicated autocommit connection LISTENing on `channels` (outside the pool: it
        lives as long as the loop that waits on it)."""
        url = self.engine.url
        conn = psycopg.connect(
            host=url.host, port=url.port, user=url.username, password=url.password,
            dbname=url.database, autocommit=True, connect_timeout=5,
        )
        for channel in channels:
            conn.execute(f'LISTEN "{channel}"')
        return conn

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


_TABLES: dict[tuple[str, str], Table] = {}


def metadata_table(schema: str, name: str) -> Table:
    """The messaging table `name` of a schema, without needing the service's models."""
    key = (schema, name)
    if key not in _TABLES:
        md = MetaData(schema=schema, naming_convention=NAMING_CONVENTION)
        messaging_tables(md)
        for table in md.tables.values():
            _TABLES[(schema, table.name)] = table
    return _TABLES[key]


class UnitOfWork:
    """A transaction that rolls back unless committed, and the place events are recorded.

    Entered by the use case (see the transaction rule above), once: entering it twice is a
    bug that would open a second session, so it raises.
    """

    def __init__(self, db: Database, *, source: str) -> None:
        self.db = db
        self.source = source
        self.session: Session
        self.recorded: list[ev.Event] = []
        self._routes: dict[str, str] = {}  # event id -> routing key, for addressed events
        self._factory = db.sessions
        self._open = False

    def read_only(self) -> UnitOfWork:
        """Enter as a read: no transaction, nothing to commit (`with uow.read_only():`)."""
        self._factory = self.db.read_sessions
        return self

    def __enter__(self) -> UnitOfWork:
        if self._open:
            raise RuntimeError("this unit of work is already open")
        self._open = True
        self.session = self._factory()
        self.recorded = []
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # close() rolls back anything uncommitted without expiring loaded objects, so a
        # use case can hand its results to the view after the block.
        self.session.close()
        self._open = False
        self._factory = self.db.sessions

    def publish(self, type_: str, data: dict[str, Any], *,
                routing_key: str | None = None) -> ev.Event:
        """Record an event for the outbox; `routing_key` addresses it (the relay publishes
        it under that key instead of its type: shared.resync's answers to one service)."""
        event = ev.new_event(type_, data, source=self.source)
        self.recorded.append(event)
        if routing_key is not None:
            self._routes[event.id] = routing_key
        return event

    def flush_events(self) -> None:
        """Write recorded events to the outbox (also called by commit); the outbox's
        trigger NOTIFYs the relay, which PostgreSQL delivers at commit."""
        if not self.recorded:
            return
        self.session.execute(
            self.db.outbox.insert(),
            [
                {"event_id": e.id, "type": e.type, "payload": e.to_dict(),
                 "routing_key": self._routes.get(e.id)}
                for e in self.recorded
            ],
        )
        self.recorded = []
        self._routes = {}

    def commit(self) -> None:
        self.flush_events()
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()
        self.recorded = []
