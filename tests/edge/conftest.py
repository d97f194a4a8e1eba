"""The edge as an attacker meets it: the whole system (deploy/local.py) behind the real
gateway, started once for tests/edge, with the limits a fuzzer would trip lifted (the
limits have tests of their own) and the Auth.js adapter switched on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.config import SERVICES
from tests.auth.smtp import MailCatcher
from tests.conftest import migrated_services
from tests.e2e.test_gateway import NGINX, System

ADAPTER_SECRET = "edge-tests-adapter-secret"
# Thousands of requests from 127.0.0.1 in a minute: nothing here may be what answers them.
LIFTED = {
    "GATEWAY_AUTH_RATE": "10000r/s", "GATEWAY_AUTH_BURST": "100000",
    "GATEWAY_MAIL_RATE": "10000r/s", "GATEWAY_MAIL_BURST": "100000",
    "LOGIN_MAX_FAILURES_PER_CLIENT": "1000000",
    "AUTH_ADAPTER_SECRET": ADAPTER_SECRET,
    # Hashing at the ASVS floor (19 MiB, 2 passes) rather than our 64 MiB, 3: a fifth of the
    # cost for the thousand logins and registrations of a run. The cost itself is tested in
    # tests/auth at the defaults.
    "AUTH_ARGON2_MEMORY_KIB": "19456", "AUTH_ARGON2_TIME_COST": "2",
}


EVERY_SERVICE_BUILT = set(migrated_services()) == set(SERVICES)


@pytest.fixture(scope="package")
def edge_mail() -> Iterator[MailCatcher]:
    catcher = MailCatcher().start()
    yield catcher
    catcher.stop()


@pytest.fixture(scope="package")
def edge_system(tmp_path_factory: pytest.TempPathFactory, signing_key: Any,
                database: str, edge_mail: MailCatcher) -> Iterator[System]:
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed: `make install` installs it")
    s = System(tmp_path_factory.mktemp("edge-system"))
    s.env.update(LIFTED, SMTP_HOST=edge_mail.host, SMTP_PORT=str(edge_mail.port))
    try:
        s.start()
        yield s
    finally:
        s.stop()


def auth_url(system: System) -> str:
    """auth itself, not the gateway: where the Next.js server reaches the adapter."""
    return f"http://127.0.0.1:{system.ports['auth']}"
