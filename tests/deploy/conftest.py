"""Fixtures of the runner's tests: a var/ of their own and ports nobody uses."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def var(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def environ() -> dict[str, str]:
    """Ports nobody uses, so a dev system running from this checkout is never touched."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_PORT")}
    env.update({f"{svc.upper()}_PORT": str(free_port())
                for svc in ("auth", "goals", "diary", "stories")})
    # The stand-in workers serve no health: 0 (any port) is one the runner does not probe.
    env.update({f"{svc.upper()}_WORKER_PORT": "0"
                for svc in ("auth", "goals", "diary", "stories")})
    env.update(GATEWAY_PORT=str(free_port()), READY_TIMEOUT="20", STOP_TIMEOUT="5")
    return env
