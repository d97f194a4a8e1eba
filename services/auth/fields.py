"""Input fields the features' schemas share (a leaf: no feature imports another's schemas)."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import fields, validate

SECRET = validate.Length(min=1, max=1024)  # a password as typed at login: any, within reason
# A new password: the policy's length (services.auth.passwords; it also refuses common
# passwords and the account's email, which a schema cannot say, so the description does)
NEW_PASSWORD = [validate.Length(min=8, error="Must be at least {min} characters."),
                validate.Length(max=128, error="Must be at most {max} characters.")]
NEW_PASSWORD_RULES = "8 to 128 characters, not a commonly used password, not your email."
# What an image URL may be: one pattern, checked and documented, written so that Python's
# and JavaScript's regular expressions read it alike (ASCII only, no \\s, whole-string
# matches); marshmallow's URL validator has rules a document cannot state.
WEB_URL = (r"https?://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?"
           r"(?:[/?#][!-~]*)?")



def web_url(**kwargs: Any) -> fields.String:
    """An http(s) URL, up to 2,048 characters."""
    return fields.String(validate=[validate.Length(max=2048),
                                   validate.Regexp(re.compile(WEB_URL + r"\Z"),
                                                   error="Not an http(s) URL.")],
                         metadata={"description": "An http(s) URL.",
                                   "pattern": f"^{WEB_URL}$"}, **kwargs)


class EmailAddress(fields.Email):
    """Emails are compared and stored trimmed and lowercased."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip().lower()
