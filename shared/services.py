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


def port_of(service: str, environ: Mapping[str, str] = os.environ) -> int:
    """The port `service`'s web process listens on: <SERVICE>_PORT, else the default."""
    value = environ.get(f"{service.upper()}_PORT", "")
    return int(value) if value else SERVICE_PORTS[service]
