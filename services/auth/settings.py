"""Auth's configuration: read from the environment once per process (in `create_app` and in
the worker's main) and passed in, so nothing in auth reads the environment on a request.

The part every service has (database, broker, token issuer and audience) is
`shared.config.Settings`, kept as `base`; the rest is auth's own. Each variable, with its
default, is listed in the README and in `.env.example`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from flask import current_app

from services.auth.mail import MailSettings
from services.auth.rate_limits import AbuseLimits
from services.auth.throttle import Limits
from shared import keys
from shared.config import Settings, env, env_int


@dataclass(frozen=True)
class AuthSettings:
    base: Settings
    keys_dir: Path  # AUTH_KEYS_DIR: the signing keys
    keys_check_s: float = 2.0  # how often the key folder is looked at for rotations
    access_ttl_s: int = 15 * 60
    session_ttl_s: int = 30 * 24 * 3600
    login_limits: Limits = Limits()
    abuse_limits: AbuseLimits = AbuseLimits()  # mails per address/client, registrations
    mail: MailSettings = MailSettings()
    public_base_url: str = "http://localhost:8080"  # where the links in mails point
    adapter_secret: str = field(default="", repr=False)  # empty: the Auth.js adapter is off

    @classmethod
    def from_env(cls) -> AuthSettings:
        return cls(
            base=Settings.from_env("auth"),
            keys_dir=keys.keys_dir(),
            keys_check_s=float(env("AUTH_KEYS_CHECK_SECONDS", "2")),
            access_ttl_s=env_int("ACCESS_TOKEN_TTL_SECONDS", 15 * 60),
            session_ttl_s=env_int("SESSION_TTL_SECONDS", 30 * 24 * 3600),
            login_limits=Limits.from_env(),
            abuse_limits=AbuseLimits.from_env(),
            mail=MailSettings.from_env(),
            public_base_url=env("PUBLIC_BASE_URL", "http://localhost:8080").rstrip("/"),
            adapter_secret=env("AUTH_ADAPTER_SECRET", ""),
        )


def current_settings() -> AuthSettings:
    """The settings of the app serving this request (built by `create_app`)."""
    return cast(AuthSettings, current_app.extensions["auth.settings"])
