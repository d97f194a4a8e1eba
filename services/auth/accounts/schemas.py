"""The accounts HTTP contract: camelCase JSON, the seed's enum values, UTC ISO-8601 times.

Two views of a user: the public profile anyone may read, and the private one (email,
verification, counters) only its owner sees. Passwords and tokens are never dumped.
"""

from __future__ import annotations

from marshmallow import fields, validate

from services.auth.fields import (
    NEW_PASSWORD,
    NEW_PASSWORD_RULES,
    SECRET,
    EmailAddress,
    web_url,
)
from services.auth.models import ExperienceLevel
from services.auth.tokens import TOKEN_TYPE
from shared.fields import Trimmed
from shared.schemas import Schema

SHORT_MAX = 100


def _phrases(attribute: str, description: str) -> fields.List:
    return fields.List(Trimmed(max_length=SHORT_MAX), attribute=attribute,
                       validate=validate.Length(max=50),
                       metadata={"description": f"{description} (up to 50, 100 chars each)."})


class PublicProfileSchema(Schema):
    id = fields.String(dump_only=True)
    name = fields.String(allow_none=True)
    image = fields.String(allow_none=True)
    currentRole = fields.String(attribute="current_role", allow_none=True)
    experienceLevel = fields.Enum(ExperienceLevel, attribute="experience_level")
    industry = fields.String(allow_none=True)
    yearsOfExperience = fields.Integer(attribute="years_of_experience", allow_none=True)
    currentSkills = fields.List(fields.String(), attribute="current_skills")
    targetSkills = fields.List(fields.String(), attribute="target_skills")
    bio = fields.String(allow_none=True)
    currentGoals = fields.List(fields.String(), attribute="current_goals")
    achievementScore = fields.Integer(attribute="achievement_score", dump_only=True)
    createdAt = fields.AwareDateTime(attribute="created_at", dump_only=True)


class ProfileSchema(PublicProfileSchema):
    email = fields.String(dump_only=True)
    verified = fields.Boolean(dump_only=True)
    emailVerified = fields.AwareDateTime(attribute="email_verified", dump_only=True,
                                         allow_none=True)
    dailyGenerationCount = fields.Integer(attribute="daily_generation_count", dump_only=True)
    lastGenerationDate = fields.AwareDateTime(attribute="last_generation_date", dump_only=True,
                                              allow_none=True)
    updatedAt = fields.AwareDateTime(attribute="updated_at", dump_only=True)


class ProfileUpdateSchema(Schema):
    """Only the career profile; send null (or []) to clear a field."""

    name = Trimmed(max_length=SHORT_MAX, allow_none=True)
    image = web_url(allow_none=True)
    currentRole = Trimmed(max_length=SHORT_MAX, attribute="current_role", allow_none=True)
    experienceLevel = fields.Enum(ExperienceLevel, attribute="experience_level")
    industry = Trimmed(max_length=SHORT_MAX, allow_none=True)
    yearsOfExperience = fields.Integer(attribute="years_of_experience", allow_none=True,
                                       strict=True, validate=validate.Range(min=0, max=80))
    currentSkills = _phrases("current_skills", "Skills you have")
    targetSkills = _phrases("target_skills", "Skills you want to learn")
    bio = fields.String(validate=validate.Length(max=2000), allow_none=True)
    currentGoals = _phrases("current_goals", "What you are working towards")


class RegisterSchema(Schema):
    email = EmailAddress(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, load_only=True, validate=NEW_PASSWORD,
                             metadata={"description": NEW_PASSWORD_RULES})
    name = Trimmed(max_length=SHORT_MAX, allow_none=True)


class LoginSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=320))
    password = fields.String(required=True, load_only=True, validate=SECRET)


class SessionTokenSchema(Schema):
    sessionToken = fields.String(attribute="session_token", required=True, load_only=True,
                                 validate=validate.Length(min=1, max=200))


class LogoutSchema(Schema):
    sessionToken = fields.String(attribute="session_token", load_only=True,
                                 validate=validate.Length(min=1, max=200), metadata={
                                     "description": "Else the session of the bearer token."})


class AccessTokenSchema(Schema):
    accessToken = fields.String(attribute="token")
    tokenType = fields.Constant(TOKEN_TYPE)
    expiresIn = fields.Integer(attribute="expires_in", metadata={"description": "Seconds."})


class LoginResultSchema(Schema):
    accessToken = fields.String(attribute="access.token")
    tokenType = fields.Constant(TOKEN_TYPE)
    expiresIn = fields.Integer(attribute="access.expires_in")
    sessionToken = fields.String(attribute="session_token", metadata={
        "description": "Keep it secret: POST it to /auth/refresh for new access tokens."})
    sessionExpires = fields.AwareDateTime(attribute="session_expires")
    user = fields.Nested(ProfileSchema)


class JwksSchema(Schema):
    keys = fields.List(fields.Dict(), metadata={"description": "Public Ed25519 keys (OKP)."})
