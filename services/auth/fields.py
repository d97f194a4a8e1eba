"""Input fields the features' schemas share (a leaf: no feature imports another's schemas)."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

SECRET = validate.Length(min=1, max=1024)  # the policy's own limits give the better message


class EmailAddress(fields.Email):
    """Emails are compared and stored trimmed and lowercased."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip().lower()
