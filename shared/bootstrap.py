"""Cluster bootstrap: one database, one schema and one login role per service.

    python -m shared.bootstrap [--database NAME] [--drop]

What it guarantees (idempotent, safe to run on every deploy):

- the database exists (``--drop`` drops it first, ``WITH (FORCE)``);
- for every service ``svc``: a LOGIN role of this database's own (``svc_svc`` in the default
  database ``growth_diary``, ``<database>_svc`` in any other, or ``<SVC>_DB_USER``; see
  ``shared.config.role_name``), its password from ``<SVC>_DB_PASSWORD`` (re-applied on every
  run so a rotated secret takes effect), a schema ``svc`` owned by that role, and
  ``search_path = svc`` for that role in that database;
- nobody but the owner can use a service schema, and ``public`` is closed to everyone, so a
  role can reach only its own schema (``goals_svc`` reading ``auth.user`` is a permission error).
  That is what lets each schema later move to its own cluster by changing one URL.
- one more LOGIN role of this database's, for the data browser (``make studio``): ``studio_ro``
  in ``growth_diary``, ``<database>_studio`` in any other (or ``STUDIO_DB_USER``; password
  ``STUDIO_DB_PASSWORD``, default its name). It may only read: ``SELECT`` on every table of
  the service schemas, now and, through default privileges, those migrations create later;
  its transactions are read-only by default too;
- only this database's roles may connect to it, and they to no other copy's database: two
  copies on one cluster (two checkouts, the tests, a benchmark) stay apart.

    python -m shared.bootstrap --purge

drops the database and this copy's roles (what ``make purge`` runs, with the bus queues).

It runs as the admin (``DATABASE_ADMIN_URL``, a superuser or a role with CREATEDB and
CREATEROLE). Services and their migrations never do: they connect as their own role.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Mapping

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow

from shared.config import DEFAULT_DATABASE, SERVICES, env, load_env_file, role_name
from shared.config import role_password as default_password

log = logging.getLogger("shared.bootstrap")

Conn = psycopg.Connection[TupleRow]

DEFAULT_ADMIN_URL = "postgresql://postgres@localhost:5432/postgres"
# Serialises concurrent bootstraps (parallel test sessions, several deploy jobs): roles are
# cluster-wide, and CREATE ROLE / CREATE DATABASE race otherwise.
_ADVISORY_LOCK_KEY = 0x6772_6F77  # "grow"


def studio_role(database: str | None = None) -> str:
    """The studio's read-only role in `database`, named like the services' (role_name)."""
    database = database or env("DATABASE_NAME", DEFAULT_DATABASE)
    default = "studio_ro" if database == DEFAULT_DATABASE else f"{database}_studio"
    return env("STUDIO_DB_USER", default)


def studio_password(database: str | None = None) -> str:
    return env("STUDIO_DB_PASSWORD", studio_role(database))


def _libpq_url(url: str) -> str:
    """Accept SQLAlchemy-style URLs (``postgresql+psycopg://``) as well as libpq ones."""
    scheme, sep, rest = url.partition("://")
    if sep and "+" in scheme:
        return f"{scheme.split('+', 1)[0]}://{rest}"
    return url


def _database_conninfo(admin_url: str, database: str) -> str:
    return make_conninfo(_libpq_url(admin_url), dbname=database)


def _connect(conninfo: str) -> Conn:
    return psycopg.connect(conninfo, autocommit=True, connect_timeout=10)


def _database_exists(conn: Conn, database: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
    return row is not None


def _role_exists(conn: Conn, role: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    return row is not None


def _ensure_database(conn: Conn, database: str, *, drop: bool) -> None:
    ident = sql.Identifier(database)
    if drop and _database_exists(conn, database):
        log.info("dropping database %s", database)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
    if not _database_exists(conn, database):
        log.info("creating database %s", database)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))


def _ensure_role(conn: Conn, role: str, password: str) -> None:
    # CREATE/ALTER ROLE take no bind parameters: the password goes in as a quoted literal.
    if _role_exists(conn, role):
        conn.execute(
            sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
    else:
        log.info("creating role %s", role)
        conn.execute(
            sql.SQL(
                "CREATE ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                "PASSWORD {}"
            ).format(sql.Identifier(role), sql.Literal(password))
        )


def _ensure_schema(conn: Conn, database: str, service: str, roles: Iterable[str]) -> None:
    role = role_name(service, database)
    schema = sql.Identifier(service)
    rid = sql.Identifier(role)
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(schema, rid))
    # A schema left over from a manual run may belong to the admin: hand it to the service.
    conn.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(schema, rid))
    conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(schema))
    others = [r for r in roles if r != role]
    if others:
        conn.execute(
            sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(
                schema, sql.SQL(", ").join(sql.Identifier(r) for r in others)
            )
        )
    conn.execute(
        sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}").format(
            rid, sql.Identifier(database), schema
        )
    )


def _ensure_reader(conn: Conn, database: str, services: Iterable[str]) -> None:
    """The studio's role: SELECT on every service schema's tables, nothing else."""
    reader = sql.Identifier(studio_role(database))
    conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(reader))
    for service in services:
        schema = sql.Identifier(service)
        owner = sql.Identifier(role_name(service, database))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, reader))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(
            schema, reader))
        # Tables the service's migrations create from now on are readable too.
        conn.execute(sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} "
                             "GRANT SELECT ON TABLES TO {}").format(owner, schema, reader))


def bootstrap(
    admin_url: str,
    database: str,
    *,
    drop: bool = False,
    services: Iterable[str] = SERVICES,
    passwords: Mapping[str, str] | None = None,
) -> None:
    """Create (or bring up to date) the database, the service roles and their schemas.

    ``passwords`` maps service name to its role's password; missing entries come from
    ``<SVC>_DB_PASSWORD`` (default: the role's name).
    """
    services = tuple(services)
    roles = [role_name(s, database) for s in services]
    pw = {s: (passwords or {}).get(s) or default_password(s, database) for s in services}
    dbident = sql.Identifier(database)

    with _connect(_libpq_url(admin_url)) as admin:
        admin.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
        try:
            _ensure_database(admin, database, drop=drop)
            for service in services:
                _ensure_role(admin, role_name(service, database), pw[service])
            _ensure_role(admin, studio_role(database), studio_password(database))

            with _connect(_database_conninfo(admin_url, database)) as db:
                # Database level: only the service roles (and the admin) may connect.
                db.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(dbident))
                if roles:
                    db.execute(
                        sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                            dbident, sql.SQL(", ").join(sql.Identifier(r) for r in roles)
                        )
                    )
                db.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    dbident, sql.Identifier(studio_role(database))))
                # The public schema is nobody's: no stray tables land there by accident.
                db.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
                if roles:
                    db.execute(
                        sql.SQL("REVOKE ALL ON SCHEMA public FROM {}").format(
                            sql.SQL(", ").join(sql.Identifier(r) for r in roles)
                        )
                    )
                for service in services:
                    _ensure_schema(db, database, service, roles)
                _ensure_reader(db, database, services)
        finally:
            if not admin.broken:
                admin.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_LOCK_KEY,))
    log.info("database %s ready for %s", database, ", ".join(services))


def drop_database(admin_url: str, database: str) -> None:
    """Drop the database (``WITH (FORCE)``) if it exists. Roles are cluster-wide and stay."""
    with _connect(_libpq_url(admin_url)) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )


def purge(admin_url: str, database: str, services: Iterable[str] = SERVICES) -> list[str]:
    """Drop the database and this copy's roles; returns what was dropped. A role that still
    owns something elsewhere (it was shared with another database by hand) is kept, and
    said so, rather than taking the other copy's objects with it."""
    dropped = []
    with _connect(_libpq_url(admin_url)) as admin:
        admin.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
        try:
            if _database_exists(admin, database):
                admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)")
                              .format(sql.Identifier(database)))
                dropped.append(f"database {database}")
            for role in [*(role_name(s, database) for s in services), studio_role(database)]:
                if not _role_exists(admin, role):
                    continue
                try:
                    admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
                    dropped.append(f"role {role}")
                except psycopg.errors.DependentObjectsStillExist:
                    log.warning("role %s kept: it still owns objects in another database",
                                role)
        finally:
            if not admin.broken:
                admin.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_LOCK_KEY,))
    return dropped


def _redacted(url: str) -> str:
    params = conninfo_to_dict(_libpq_url(url))
    return " ".join(f"{k}={'***' if k == 'password' else v}" for k, v in params.items())


def main(argv: list[str] | None = None) -> int:
    load_env_file()
    parser = argparse.ArgumentParser(
        prog="python -m shared.bootstrap",
        description="Create the database, one schema and one login role per service.",
    )
    parser.add_argument(
        "--database",
        default=env("DATABASE_NAME", DEFAULT_DATABASE),
        help="database name (default: $DATABASE_NAME or %(default)s)",
    )
    parser.add_argument(
        "--drop", action="store_true", help="drop the database first (destroys all data)"
    )
    parser.add_argument(
        "--purge", action="store_true",
        help="drop the database and this copy's roles instead (destroys all data)",
    )
    parser.add_argument(
        "--admin-url",
        default=env("DATABASE_ADMIN_URL", DEFAULT_ADMIN_URL),
        help="admin connection URL (default: $DATABASE_ADMIN_URL)",
    )
    parser.add_argument(
        "--service",
        action="append",
        choices=SERVICES,
        help="limit to these services (repeatable; default: all)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="bootstrap: %(message)s")
    try:
        if args.purge:
            gone = purge(args.admin_url, args.database, args.service or SERVICES)
            print(f"bootstrap: dropped {', '.join(gone) or 'nothing (none existed)'}")
            return 0
        bootstrap(
            args.admin_url,
            args.database,
            drop=args.drop,
            services=args.service or SERVICES,
        )
    except psycopg.Error as exc:
        print(
            f"bootstrap: failed against {_redacted(args.admin_url)}: {exc}".rstrip(),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
