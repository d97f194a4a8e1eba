"""What a service's views reach for: its wiring (settings, database, token verifier,
tombstones), set once by the app factory, and a fresh unit of work per use case."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from flask import current_app

from shared.config import Settings
from shared.db import Database, UnitOfWork
from shared.tokens import TokenVerifier
from shared.tombstones import Tombstones


@dataclass
class ServiceContext:
    settings: Settings
    db: Database
    verifier: TokenVerifier
    tombstones: Tombstones

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.db, source=f"/{self.settings.service}")


def service() -> ServiceContext:
    return cast(ServiceContext, current_app.extensions["service"])


def unit_of_work() -> UnitOfWork:
    """A unit of work for the use case to open (views never open or commit one)."""
    return service().unit_of_work()
