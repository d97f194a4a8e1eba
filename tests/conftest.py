"""Session fixtures: real PostgreSQL and RabbitMQ, a fresh test database, one bus namespace.

Where things are: `DATABASE_ADMIN_URL` / `AMQP_URL` from the environment, else the servers
on localhost, else (only when a Docker engine answers) testcontainers. Docker is never
required. Every test run gets its own bus namespace, so a running dev system is untouched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import psycopg
import pytest
from kombu import Connection

from shared import bus, keys
from shared.bootstrap import bootstrap
from shared.config import SERVICES, Settings, env
from shared.db import Database
from shared.tokens import TokenVerifier

# Settings are read when built (never at import), so the run's own environment can be set
# here, after the imports.
_TMP = Path(tempfile.mkdtemp(prefix="growth-tests-"))
os.environ.update({
    "DATABASE_NAME": os.environ.get("TEST_DATABASE_NAME", "growth_diary_test"),
    "EVENT_NAMESPACE": f"test{os.getpid()}",
    "EVENT_RETRY_DELAYS_MS": "200,400",
    "EVENT_MAX_ATTEMPTS": "3",
    "AUTH_KEYS_DIR": str(_TMP / "keys"),
    "MAIL_DIR": str(_TMP / "mail"),
    "LOG_LEVEL": "WARNING",
    # Every test registers and asks for mail from 127.0.0.1: the abuse limits are lifted for
    # the run, and the tests of them set their own (tests/auth/conftest.py: abuse_limits).
    "REGISTER_MAX_PER_CLIENT": "1000000",
    "MAIL_MAX_PER_ADDRESS": "1000000",
    "MAIL_MAX_PER_CLIENT": "1000000",
    # The workers tests start serve their health on any free port, never on a running
    # copy's (tests of the health server choose theirs).
    **{f"{svc.upper()}_WORKER_PORT": "0" for svc in SERVICES},
})

ROOT = Path(__file__).resolve().parent.parent


def _reachable_postgres(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=3).close()
        return True
    except psycopg.Error:
        return False


def _reachable_broker(url: str) -> bool:
    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
        return True
    except Exception:  # noqa: BLE001 - any failure means "not here"
        return False


def _docker_engine() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[dict[str, str]]:
    """Find (or, with Docker, start) PostgreSQL and RabbitMQ; point the settings at them."""
    containers: list[Any] = []
    admin_url = env("DATABASE_ADMIN_URL", "postgresql://postgres@localhost:5432/postgres")
    amqp_url = env("AMQP_URL", "amqp://guest:guest@localhost:5672//")
    if not _reachable_postgres(admin_url):
        if not _docker_engine():
            pytest.exit(f"PostgreSQL not reachable at {admin_url} and no Docker engine", 2)
        from testcontainers.postgres import PostgresContainer

        pg = PostgresContainer("postgres:15", driver=None).start()
        containers.append(pg)
        admin_url = pg.get_connection_url()
        os.environ["DATABASE_HOST"] = pg.get_container_host_ip()
        os.environ["DATABASE_PORT"] = str(pg.get_exposed_port(5432))
    if not _reachable_broker(amqp_url):
        if not _docker_engine():
            pytest.exit(f"RabbitMQ not reachable at {amqp_url} and no Docker engine", 2)
        from testcontainers.rabbitmq import RabbitMqContainer

        mq = RabbitMqContainer("rabbitmq:3.13").start()
        containers.append(mq)
        amqp_url = (f"amqp://guest:guest@{mq.get_container_host_ip()}:"
                    f"{mq.get_exposed_port(5672)}//")
    os.environ["DATABASE_ADMIN_URL"] = admin_url
    os.environ["AMQP_URL"] = amqp_url
    yield {"admin_url": admin_url, "amqp_url": amqp_url}
    for container in containers:
        container.stop()


def migrated_services() -> list[str]:
    def ready(service: str) -> bool:
        migrations = ROOT / "services" / service / "migrations"
        return (migrations / "env.py").exists() and any((migrations / "versions").glob("*.py"))

    return [s for s in SERVICES if ready(s)]


@pytest.fixture(scope="session")
def database(infrastructure: dict[str, str]) -> Iterator[str]:
    """A fresh test database: one schema and role per service, every migration applied."""
    from alembic import command

    from shared.migrate import alembic_config

    name = os.environ["DATABASE_NAME"]
    bootstrap(infrastructure["admin_url"], name, drop=True)
    for service in migrated_services():
        command.upgrade(alembic_config(service), "head")
    yield name
    settings = Settings.from_env("goals")
    bus.delete_namespace(infrastructure["amqp_url"], bus.Names(settings.namespace), SERVICES,
                         settings.retry_delays_ms)
    shutil.rmtree(_TMP, ignore_errors=True)


@pytest.fixture(scope="session")
def signing_key() -> keys.SigningKey:
    """Auth's signing key for this run (auth's app loads it from AUTH_KEYS_DIR too)."""
    existing = keys.load(keys.keys_dir())
    return existing[-1] if existing else keys.generate(keys.keys_dir())


@pytest.fixture(scope="session")
def verifier(signing_key: keys.SigningKey) -> TokenVerifier:
    settings = Settings.from_env("goals")
    return TokenVerifier(issuer=settings.token_issuer, audience=settings.token_audience,
                         jwks={"keys": [signing_key.public_jwk()]})


@pytest.fixture(scope="session")
def make_token(signing_key: keys.SigningKey) -> Callable[..., str]:
    """A token as auth would sign it; claims can be overridden to forge bad ones."""

    def make(user_id: str, *, ttl: int = 300, **claims: Any) -> str:
        settings = Settings.from_env("auth")
        now = int(time.time())
        payload = {"sub": user_id, "iss": settings.token_issuer, "aud": settings.token_audience,
                   "iat": now, "exp": now + ttl, **claims}
        return jwt.encode(payload, signing_key.private_key, algorithm="EdDSA",
                          headers={"kid": signing_key.kid})

    return make


@pytest.fixture(scope="session")
def settings() -> Callable[[str], Settings]:
    return Settings.from_env


@pytest.fixture(scope="session")
def dbs(database: str) -> Iterator[Callable[[str], Database]]:
    """One Database per service for the session, connected as that service's role."""
    made: dict[str, Database] = {}

    def get(service: str) -> Database:
        if service not in made:
            made[service] = Database(Settings.from_env(service).database_url, service)
        return made[service]

    yield get
    for db in made.values():
        db.dispose()


@pytest.fixture(scope="session")
def client(verifier: TokenVerifier, signing_key: keys.SigningKey,
           dbs: Callable[[str], Database]) -> Callable[[str], Any]:
    """Flask test clients, one app per service, sharing the session's databases."""
    import importlib

    apps: dict[str, Any] = {}

    def get(service: str) -> Any:
        if service not in apps:
            module = importlib.import_module(f"services.{service}.app")
            wiring: dict[str, Any] = {"db": dbs(service)}
            if service != "auth":
                wiring["verifier"] = verifier
            apps[service] = module.create_app({"TESTING": True}, **wiring)
        return apps[service].test_client()

    return get


@pytest.fixture
def auth_header(make_token: Callable[..., str]) -> Callable[[str], dict[str, str]]:
    def header(user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_token(user_id)}"}

    return header


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `unit` every test that needs neither PostgreSQL nor RabbitMQ (it asks for no
    fixture that reaches them), so `make test-unit` can run just those, anywhere."""
    for item in items:
        if "infrastructure" not in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.unit)
