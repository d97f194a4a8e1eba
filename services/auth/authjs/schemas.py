"""The Auth.js adapter's HTTP contract: Auth.js's own shapes (camelCase, OAuth fields
snake_case as providers name them). Where Auth.js's method returns null, so does the route.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from marshmallow import EXCLUDE, fields, validate

from services.auth.fields import EmailAddress, web_url
from shared.schemas import Schema

ACCOUNT_TYPES = ("oauth", "oidc", "email", "webauthn")
TOKEN = validate.Length(min=1, max=512)
KEY = validate.Length(min=1, max=255)
USER_ID = validate.Length(min=1, max=32)  # our cuids; longer is no user of ours


class Nullable(Schema):
    """Dumps None as JSON null: how the adapter says "not found", as Auth.js expects."""

    class Meta:
        unknown = EXCLUDE  # Auth.js spreads provider profiles in; what we do not keep is dropped

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        return None if obj is None else super().dump(obj, many=many)


def _when(attribute: str | None = None, **kwargs: Any) -> fields.AwareDateTime:
    return fields.AwareDateTime(attribute=attribute, default_timezone=UTC, **kwargs)


class AdapterUserSchema(Nullable):
    id = fields.String(dump_only=True, metadata={"description": "Ours (a cuid); one sent "
                                                 "to createUser is ignored."})
    name = fields.String(allow_none=True, validate=validate.Length(max=255))
    email = EmailAddress(required=True, validate=validate.Length(max=254))
    emailVerified = _when("email_verified", allow_none=True)
    image = web_url(allow_none=True)


class AdapterUserUpdateSchema(AdapterUserSchema):
    """updateUser's Partial<AdapterUser>: the id is in the path."""

    email = EmailAddress(validate=validate.Length(max=254))


class AdapterAccountSchema(Nullable):
    id = fields.String(dump_only=True)
    userId = fields.String(attribute="user_id", required=True, validate=USER_ID)
    type = fields.String(required=True, validate=validate.OneOf(ACCOUNT_TYPES))
    provider = fields.String(required=True, validate=KEY)
    providerAccountId = fields.String(attribute="provider_account_id", required=True,
                                      validate=KEY)
    refresh_token = fields.String(allow_none=True)
    access_token = fields.String(allow_none=True)
    expires_at = fields.Integer(allow_none=True, strict=True,
                                validate=validate.Range(min=-(2**63), max=2**63 - 1),
                                metadata={"description": "Unix seconds."})
    token_type = fields.String(allow_none=True)
    scope = fields.String(allow_none=True)
    id_token = fields.String(allow_none=True)
    session_state = fields.String(allow_none=True)


class AdapterSessionSchema(Nullable):
    id = fields.String(dump_only=True)
    sessionToken = fields.String(attribute="session_token", required=True, validate=TOKEN)
    userId = fields.String(attribute="user_id", required=True, validate=USER_ID)
    expires = _when(required=True)


class AdapterSessionUpdateSchema(AdapterSessionSchema):
    """updateSession's Partial<AdapterSession>: found by sessionToken."""

    userId = fields.String(attribute="user_id", validate=USER_ID)
    expires = _when()


class AdapterSessionTokenSchema(Schema):
    sessionToken = fields.String(attribute="session_token", required=True, validate=TOKEN)


class AdapterSessionAndUserSchema(Nullable):
    session = fields.Nested(AdapterSessionSchema)
    user = fields.Nested(AdapterUserSchema)


class AdapterVerificationTokenSchema(Nullable):
    identifier = fields.String(required=True, validate=validate.Length(min=1, max=320))
    token = fields.String(required=True, validate=TOKEN)
    expires = _when(required=True)


class AdapterVerificationTokenUseSchema(Schema):
    identifier = fields.String(required=True, validate=validate.Length(min=1, max=320))
    token = fields.String(required=True, validate=TOKEN)


# Where Auth.js's method returns null, so does the route: these are documented nullable.


class AdapterUserOrNullSchema(AdapterUserSchema):
    OPENAPI_NULLABLE = True


class AdapterAccountOrNullSchema(AdapterAccountSchema):
    OPENAPI_NULLABLE = True


class AdapterSessionOrNullSchema(AdapterSessionSchema):
    OPENAPI_NULLABLE = True


class AdapterSessionAndUserOrNullSchema(AdapterSessionAndUserSchema):
    OPENAPI_NULLABLE = True


class AdapterVerificationTokenOrNullSchema(AdapterVerificationTokenSchema):
    OPENAPI_NULLABLE = True
