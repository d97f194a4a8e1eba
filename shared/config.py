"""The one configuration loader: environment variables, with a local `.env` for development.

Settings are built once per process (the app factory, the worker's main) and passed in;
nothing reads the environment on a request. `.env` is read by the entry points
(`load_env_file()`: the runner, gunicorn's config, the worker and command-line tools), never
at import, and never overrides the real environment. Every default works on a developer
machine with PostgreSQL and RabbitMQ on localhost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dotenv import load_dotenv

from shared.services import SERVICES, port_of, worker_port_of

__all__ = ["SERVICES", "Settings", "env", "env_int", "database_url", "load_env_file",
           "role_name", "role_password"]
REPO_ROOT = Path(__file__).resolve().parent.parent


def load_env_file(path: Path = REPO_ROOT / ".env") -> None:
    """Read `.env` into the environment (for entry points only; the real environment wins)."""
    load_dotenv(path, override=False)


def env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def env_int(name: str, default: int) -> int:
    return int(env(name, str(default)))


DEFAULT_DATABASE = "growth_diary"


def role_name(service: str, database: str | None = None) -> str:
    """A service's login role in `database` (default: DATABASE_NAME): <SVC>_DB_USER, else
    `<svc>_svc` in the default database and `<database>_<svc>` in any other. Roles are
    cluster-wide, so two copies on one cluster (two checkouts, the test suite, a benchmark)
    each get their own and never reset or reach each other's."""
    database = database or env("DATABASE_NAME", DEFAULT_DATABASE)
    default = f"{service}_svc" if database == DEFAULT_DATABASE else f"{database}_{service}"
    return env(f"{service.upper()}_DB_USER", default)


def role_password(service: str, database: str | None = None) -> str:
    """<SVC>_DB_PASSWORD, else the role's name (fine on a developer machine only)."""
    return env(f"{service.upper()}_DB_PASSWORD", role_name(service, database))


def database_url(service: str, database: str | None = None) -> str:
    """A service's own URL: its own login role, its own schema (search_path is set on the
    role), in `database` (default: DATABASE_NAME)."""
    name = database or env("DATABASE_NAME", DEFAULT_DATABASE)
    host = env("DATABASE_HOST", "localhost")
    port = env("DATABASE_PORT", "5432")
    role, password = role_name(service, name), role_password(service, name)
    default = f"postgresql+psycopg://{role}:{password}@{host}:{port}/{name}"
    return default if database else env(f"{service.upper()}_DATABASE_URL", default)


@dataclass(frozen=True)
class Settings:
    service: str
    database_url: str
    amqp_url: str
    namespace: str
    jwks_url: str
    token_issuer: str
    token_audience: str
    port: int
    log_level: str
    relay_batch: int
    consumer_prefetch: int
    max_attempts: int
    retry_delays_ms: tuple[int, ...]
    outbox_retention_s: int
    tombstone_horizon_s: int
    worker_host: str
    worker_port: int
    worker_stall_s: float

    @classmethod
    def from_env(cls, service: str, **overrides: object) -> Settings:
        delays = env("EVENT_RETRY_DELAYS_MS", "1000,5000,30000")
        values: dict[str, object] = dict(
            service=service,
            database_url=database_url(service),
            amqp_url=env("AMQP_URL", "amqp://guest:guest@localhost:5672//"),
            namespace=env("EVENT_NAMESPACE", "growth"),
            jwks_url=env("AUTH_JWKS_URL", "http://127.0.0.1:8001/auth/.well-known/jwks.json"),
            token_issuer=env("TOKEN_ISSUER", "growth-diary-auth"),
            token_audience=env("TOKEN_AUDIENCE", "growth-diary"),
            port=port_of(service) if service in SERVICES else env_int("PORT", 8000),
            log_level=env("LOG_LEVEL", "INFO"),
            relay_batch=env_int("OUTBOX_BATCH", 500),
            consumer_prefetch=env_int("CONSUMER_PREFETCH", 200),
            max_attempts=env_int("EVENT_MAX_ATTEMPTS", 4),
            retry_delays_ms=tuple(int(d) for d in delays.split(",") if d.strip()),
            outbox_retention_s=env_int("OUTBOX_RETENTION_SECONDS", 3600),
            # Tokens issued within it are checked against the in-memory tombstones; older
            # ones against the table (see shared.tombstones). Longer than a token's life.
            tombstone_horizon_s=env_int("TOMBSTONE_HORIZON_SECONDS", 3600),
            # The worker's health server (shared.health): where, and how long a loop may go
            # without a turn before the worker counts as hung.
            worker_host=env("WORKER_HOST", "127.0.0.1"),
            worker_port=worker_port_of(service) if service in SERVICES else 0,
            worker_stall_s=float(env("WORKER_STALL_SECONDS", "15")),
        )
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
