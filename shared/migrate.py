"""`python -m shared.migrate <service> <alembic args...>`: one service's migrations only.

e.g. `python -m shared.migrate goals upgrade head`, `... goals downgrade base`,
`... goals check`, `... goals revision --autogenerate -m "add x"`.

And `python -m shared.migrate <service> wait [--timeout S] [--interval S]`: block until the
service's schema is at the revision this code's migrations end at (what an init container
runs before web or worker start; the migrate Job brings the schema there). It exits 0 once
the schema is at head, or at a revision this code does not know (a later release migrated
it: with expand/contract migrations the older code still runs on it, which is what a
rollback needs); it waits while the schema is behind (or not made yet, or the database does
not answer) and exits 1 when the deadline passes.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from alembic.config import CommandLine, Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool
from sqlalchemy import exc as sa_exc

from shared.config import REPO_ROOT, SERVICES, database_url, load_env_file


def alembic_config(service: str, url: str | None = None) -> Config:
    config = Config(str(REPO_ROOT / "services" / service / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "services" / service / "migrations"))
    config.set_main_option("sqlalchemy.url", (url or database_url(service)).replace("%", "%%"))
    return config


@dataclass(frozen=True)
class SchemaState:
    """Where a service's schema stands against the code's migrations."""

    current: tuple[str, ...]  # the revisions in <schema>.alembic_version (none: not migrated)
    heads: tuple[str, ...]  # where this code's migrations end
    unknown: tuple[str, ...]  # current revisions this code has no script for (a newer release)

    @property
    def ready(self) -> bool:
        return bool(self.current) and (set(self.current) == set(self.heads) or bool(self.unknown))

    def describe(self) -> str:
        current = ", ".join(self.current) or "none (not migrated)"
        heads = ", ".join(self.heads)
        if self.unknown:
            return (f"at {current}, newer than this code's head {heads}: "
                    "taken as compatible (expand/contract)")
        return f"at {current}, head is {heads}"


def schema_state(service: str, url: str | None = None) -> SchemaState:
    """Read the schema's revision (raises sqlalchemy's OperationalError if unreachable)."""
    config = alembic_config(service, url)
    script = ScriptDirectory.from_config(config)
    heads = tuple(script.get_heads())
    engine = create_engine(url or database_url(service), poolclass=pool.NullPool,
                           connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"version_table_schema": service})
            current = tuple(context.get_current_heads())
    finally:
        engine.dispose()
    known = {rev.revision for rev in script.walk_revisions()}
    unknown = tuple(rev for rev in current if rev not in known)
    return SchemaState(current=current, heads=heads, unknown=unknown)


def wait_for_schema(service: str, *, timeout: float, interval: float = 2.0,
                    url: str | None = None,
                    say: Callable[[str], None] = print) -> SchemaState | None:
    """Poll until the schema is ready (returns its state) or `timeout` seconds pass (None)."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            state = schema_state(service, url)
            message = state.describe()
            if state.ready:
                say(f"{service}: schema ready ({message})")
                return state
        except sa_exc.DBAPIError as exc:
            # not there yet (database starting, role or schema not bootstrapped)
            message = f"database not answering: {str(exc.orig).strip().splitlines()[0]}"
        if message != last:
            say(f"{service}: waiting for the schema: {message}")
            last = message
        if time.monotonic() + interval > deadline:
            say(f"{service}: schema not ready after {timeout:g}s: {message}")
            return None
        time.sleep(interval)


def wait_main(service: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m shared.migrate {service} wait",
                                     description="wait until the schema is at this code's head")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds (default 300)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between checks")
    args = parser.parse_args(argv)
    ok = wait_for_schema(service, timeout=args.timeout, interval=args.interval,
                         say=lambda line: print(line, flush=True))
    return 0 if ok else 1


def main(argv: list[str]) -> None:
    load_env_file()
    if not argv or argv[0] not in SERVICES:
        sys.exit(f"usage: python -m shared.migrate {{{'|'.join(SERVICES)}}} <alembic command>"
                 " | wait [--timeout S]")
    service, rest = argv[0], argv[1:]
    if rest[:1] == ["wait"]:
        sys.exit(wait_main(service, rest[1:]))
    cli = CommandLine(prog=f"shared.migrate {service}")
    options = cli.parser.parse_args(rest)
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    cli.run_cmd(alembic_config(service), options)


if __name__ == "__main__":
    main(sys.argv[1:])
