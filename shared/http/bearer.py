"""Bearer authentication: every service verifies auth's access tokens itself and refuses
the tokens of a deleted user and those issued before the user's revocation cutoff (log out
everywhere, a password change or reset), answered in process by `shared.tombstones`: no
database round trip on a request."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar, cast

from flask import g, request

from shared.errors import NotFound, Unauthorized
from shared.http.context import service
from shared.tokens import InvalidToken

F = TypeVar("F", bound=Callable[..., Any])


def current_user_id() -> str:
    return cast(str, g.user_id)


def authenticated(view: F) -> F:
    """Require a valid bearer token for a user that has not been deleted, issued after the
    user's last revocation."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("A bearer access token is required")
        ctx = service()
        try:
            claims = ctx.verifier.verify(token.strip())
        except InvalidToken as exc:
            raise Unauthorized("The access token is invalid or expired") from exc
        if ctx.tombstones.refuses(claims.user_id, issued_at=float(claims.raw["iat"])):
            raise Unauthorized("The access token is invalid or expired")
        g.user_id = claims.user_id
        g.claims = claims
        refuse_nul_ids(kwargs)  # after the token: a stranger learns nothing but 401
        return view(*args, **kwargs)

    wrapper._apidoc = getattr(view, "_apidoc", {})  # type: ignore[attr-defined]
    wrapper._authenticated = True  # type: ignore[attr-defined]  # see shared.http.app
    return cast(F, wrapper)


def refuse_nul_ids(view_args: dict[str, Any]) -> None:
    """No id holds a NUL, and PostgreSQL cannot even take one as a parameter: 404."""
    if any("\x00" in str(value) for value in view_args.values()):
        raise NotFound("No such resource")


def revoked_here(user_id: str, revoked_at: datetime) -> None:
    """A revocation this process has just committed (auth's logout-all, password change
    and reset) is refused here at once, without waiting for its notification to come back;
    the other processes hear of it by NOTIFY within milliseconds."""
    service().tombstones.note_revoked(user_id, revoked_at.timestamp())
