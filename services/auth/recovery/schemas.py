"""The HTTP contract of email verification and password recovery (camelCase JSON).

Link tokens and passwords are load-only: nothing here ever writes a secret back out.
"""

from __future__ import annotations

from marshmallow import fields, validate

from services.auth.fields import NEW_PASSWORD, NEW_PASSWORD_RULES, SECRET, EmailAddress
from shared.schemas import Schema

LINK_TOKEN = validate.Length(min=1, max=200)


class LinkTokenSchema(Schema):
    token = fields.String(required=True, load_only=True, validate=LINK_TOKEN, metadata={
        "description": "The `token` parameter of the link in the mail."})


class ResetRequestSchema(Schema):
    email = EmailAddress(required=True, validate=validate.Length(max=254))


class ResetConfirmSchema(LinkTokenSchema):
    password = fields.String(required=True, load_only=True, validate=NEW_PASSWORD, metadata={
        "description": f"The new password: {NEW_PASSWORD_RULES}"})


class PasswordChangeSchema(Schema):
    currentPassword = fields.String(attribute="current_password", required=True,
                                    load_only=True, validate=SECRET)
    newPassword = fields.String(attribute="new_password", required=True, load_only=True,
                                validate=NEW_PASSWORD,
                                metadata={"description": NEW_PASSWORD_RULES})


class AcceptedSchema(Schema):
    message = fields.String()
