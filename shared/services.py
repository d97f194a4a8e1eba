"""The services of this system and their ports: the one list every tool reads.

A leaf module with no imports beyond the standard library, so gunicorn's config, the nginx
renderer, the runner and the compose renderer can read it without loading the application.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# service name -> default HTTP port of its web process (override with <SERVICE>_PORT)
SERVICE_PORTS: dict[str, int] = {"auth": 8001, "goals": 8002, "diary": 8003, "stories": 8004}
SERVICES: tuple[str, ...] = tuple(SERVICE_PORTS)
GATEWAY_PORT = 8080
# service name -> default port of its worker's health server (override: <SERVICE>_WORKER_PORT)
WORKER_PORTS: dict[str, int] = {svc: port + 100 for svc, port in SERVICE_PORTS.items()}


def port_of(service: str, environ: Mapping[str, str] = os.environ) -> int:
    """The port `service`'s web process listens on: <SERVICE>_PORT, else the default."""
    value = environ.get(f"{service.upper()}_PORT", "")
    return int(value) if value else SERVICE_PORTS[service]


def worker_port_of(service: str, environ: Mapping[str, str] = os.environ) -> int:
    """The port `service`'s worker serves its health on: <SERVICE>_WORKER_PORT, else the
    default; 0 asks for any free port (the tests' workers)."""
    value = environ.get(f"{service.upper()}_WORKER_PORT", "")
    return int(value) if value else WORKER_PORTS[service]
