"""Each service owns its schema: migrations apply, reverse and match the models; roles are
fenced off from each other's data."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from alembic import command
from sqlalchemy.engine import make_url

from shared.bootstrap import bootstrap, drop_database, purge
from shared.config import SERVICES, database_url, role_name
from shared.migrate import alembic_config
from tests.conftest import migrated_services

SCRATCH = "growth_diary_migrations_test"


@pytest.fixture(scope="module")
def scratch_database(infrastructure: dict[str, str]) -> Iterator[str]:
    bootstrap(infrastructure["admin_url"], SCRATCH, drop=True)
    yield SCRATCH
    drop_database(infrastructure["admin_url"], SCRATCH)


def scratch_url(service: str) -> str:
    return database_url(service, SCRATCH)  # the scratch database's own roles


def tables(service: str) -> set[str]:
    url = make_url(scratch_url(service))
    with psycopg.connect(host=url.host, port=url.port, user=url.username,
                         password=url.password, dbname=SCRATCH) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s",
                            (service,)).fetchall()
    return {r[0] for r in rows}


@pytest.mark.parametrize("service", migrated_services())
def test_migrations_apply_from_empty_reverse_cleanly_and_match_the_models(
        scratch_database: str, service: str) -> None:
    config = alembic_config(service, scratch_url(service))
    command.upgrade(config, "head")
    assert {"outbox", "inbox", "deleted_user", "alembic_version"} <= tables(service)
    command.check(config)  # raises if models and migrations drifted apart
    command.downgrade(config, "base")
    assert tables(service) <= {"alembic_version"}
    command.upgrade(config, "head")  # and again: the downgrade left nothing behind
    out = io.StringIO()
    config.stdout = out
    command.current(config)
    assert "(head)" in out.getvalue()


def test_migrating_one_service_touches_no_other_schema(scratch_database: str) -> None:
    services = migrated_services()
    first, others = services[0], services[1:]
    for other in others:
        command.downgrade(alembic_config(other, scratch_url(other)), "base")
    command.upgrade(alembic_config(first, scratch_url(first)), "head")
    for other in others:
        assert tables(other) <= {"alembic_version"}, other


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_role_cannot_read_or_write_another_schema(database: str,
                                                            service: str) -> None:
    url = make_url(database_url(service))
    with psycopg.connect(host=url.host, port=url.port, user=url.username,
                         password=url.password, dbname=os.environ["DATABASE_NAME"],
                         autocommit=True) as conn:
        for other in SERVICES:
            if other == service:
                conn.execute(f"CREATE TABLE {other}.probe_ok (id int)")
                conn.execute(f"DROP TABLE {other}.probe_ok")
                continue
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT * FROM {other}.outbox")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"CREATE TABLE {other}.intruder (id int)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE public.intruder (id int)")



def params(service: str, database: str, **override: Any) -> dict[str, Any]:
    """How `service` connects in `database` (its role there), as psycopg arguments."""
    url = make_url(database_url(service, database))
    return {"host": url.host, "port": url.port, "user": url.username,
            "password": url.password, "dbname": database, "connect_timeout": 5, **override}


def test_two_copies_on_one_cluster_have_roles_of_their_own_and_stay_apart(
        database: str, infrastructure: dict[str, str]) -> None:
    """A second copy (another checkout, a benchmark) bootstrapped beside the suite's own
    database: its roles are its own, they reach only its database, bootstrapping it resets
    nothing of ours, and purging it leaves ours whole."""
    copy = f"{database}_copy"
    admin = infrastructure["admin_url"]
    assert role_name("goals", copy) != role_name("goals", database)
    bootstrap(admin, copy, drop=True, passwords={s: f"other-{s}" for s in SERVICES})
    theirs = params("goals", copy, password="other-goals")
    try:
        with psycopg.connect(**params("goals", database)) as ours:  # our password stands
            ours.execute("SELECT 1")
        with psycopg.connect(**theirs) as conn:
            conn.execute("SELECT 1")
        # Neither copy's role may even connect to the other's database.
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            psycopg.connect(**{**theirs, "dbname": database})
        with pytest.raises(psycopg.OperationalError, match="permission denied"):
            psycopg.connect(**params("goals", database, dbname=copy))
    finally:
        dropped = purge(admin, copy)
    assert f"database {copy}" in dropped
    assert {f"role {role_name(s, copy)}" for s in SERVICES} <= set(dropped)
    with psycopg.connect(admin.replace("postgresql+psycopg://", "postgresql://")) as conn:
        roles = {r for (r,) in conn.execute("SELECT rolname FROM pg_roles")}
    assert not {role_name(s, copy) for s in SERVICES} & roles
    assert {role_name(s, database) for s in SERVICES} <= roles
    with psycopg.connect(**params("goals", database)) as ours:
        ours.execute("SELECT 1")
