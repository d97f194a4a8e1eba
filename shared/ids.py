"""Ids: cuid2, as the seed asks (`@default(cuid())`)."""

from __future__ import annotations

from cuid2 import Cuid

_generator = Cuid(length=25)


def new_id() -> str:
    return _generator.generate()
