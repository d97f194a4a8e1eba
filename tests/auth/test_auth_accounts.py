"""Accounts over HTTP: register, log in, refresh, log out, my profile, public profiles."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import select, update

from services.auth.models import Account, AchievementAward, PasswordReset, User, UserSession
from services.auth.settings import AuthSettings
from services.auth.tokens import NoSigningKey, TokenIssuer
from shared.db import Database, utcnow
from shared.tokens import TokenVerifier
from tests.auth.support import PASSWORD, bearer, load_user, outbox_events, unique_email

PROBLEM = "application/problem+json"
Register = Callable[..., dict[str, Any]]
Login = Callable[..., dict[str, Any]]


def _problem(response: Any) -> dict[str, Any]:
    assert response.mimetype == PROBLEM, response.get_data(as_text=True)
    body = dict(response.get_json())
    body.pop("requestId", None)
    return body


# -- registering ---------------------------------------------------------------------------


def test_registering_returns_my_private_profile_and_announces_the_public_one(
        api: Any, db: Database) -> None:
    email = unique_email("Mixed.Case")
    response = api.post("/auth/register", json={
        "email": f"  {email.upper()} ", "password": PASSWORD, "name": "Ada"})

    assert response.status_code == 201
    body = response.get_json()
    assert body["email"] == email.lower()
    assert body["name"] == "Ada"
    assert body["verified"] is False
    assert body["experienceLevel"] == "JUNIOR"
    assert body["achievementScore"] == 0 and body["dailyGenerationCount"] == 0
    assert body["currentSkills"] == []
    assert "password" not in body
    [event] = outbox_events(db, "auth.user.registered", body["id"])
    assert event["data"]["user_id"] == body["id"]
    assert event["data"]["name"] == "Ada"
    assert event["data"]["experience_level"] == "JUNIOR"
    assert "email" not in event["data"]


def test_registering_an_email_twice_is_a_conflict(api: Any, register: Register) -> None:
    email = unique_email()
    register(email=email)

    response = api.post("/auth/register", json={"email": email.upper(), "password": PASSWORD})

    assert response.status_code == 409
    assert _problem(response)["title"] == "Conflict"


def test_registration_explains_each_bad_field(api: Any) -> None:
    response = api.post("/auth/register", json={"email": "not-an-email", "password": "x" * 9,
                                                "role": "admin"})

    assert response.status_code == 422
    errors = _problem(response)["errors"]
    assert set(errors) == {"email", "role"}


def test_registration_refuses_weak_passwords(api: Any) -> None:
    for password, message in [("short", "at least 8"), ("password123", "common"),
                              ("P" * 129, "at most 128")]:
        response = api.post("/auth/register",
                            json={"email": unique_email(), "password": password})
        assert response.status_code == 422, password
        [problem] = _problem(response)["errors"]["password"]
        assert message in problem


# -- logging in, refreshing, logging out ---------------------------------------------------


def test_login_returns_an_access_token_that_opens_my_profile(
        api: Any, register: Register) -> None:
    user = register()

    response = api.post("/auth/login", json={"email": f" {user['email'].upper()}",
                                             "password": PASSWORD})

    assert response.status_code == 200
    body = response.get_json()
    assert body["tokenType"] == "Bearer"
    assert body["expiresIn"] == 900
    assert body["sessionToken"] and body["sessionExpires"]
    assert body["user"]["id"] == user["id"]
    me = api.get("/auth/me", headers=bearer(body["accessToken"]))
    assert me.status_code == 200
    assert me.get_json()["email"] == user["email"]


def test_access_tokens_are_eddsa_jwts_verifiable_with_the_published_keys(
        api: Any, login: Login, settings: Callable[..., Any], db: Database) -> None:
    body = login()
    jwks = api.get("/auth/.well-known/jwks.json").get_json()
    cfg = settings("goals")

    claims = TokenVerifier(issuer=cfg.token_issuer, audience=cfg.token_audience,
                           jwks=jwks).verify(body["accessToken"]).raw

    header = jwt.get_unverified_header(body["accessToken"])
    assert header["alg"] == "EdDSA"
    assert header["kid"] in {key["kid"] for key in jwks["keys"]}
    assert claims["sub"] == body["user"]["id"]
    # iat to the microsecond (what a revocation's cutoff is compared with), exp whole seconds
    assert claims["exp"] == int(claims["iat"]) + 900
    assert claims["iat"] == round(claims["iat"], 6)
    assert claims["jti"]
    with db.sessions() as session:
        stored = session.get(UserSession, claims["sid"])
        assert stored is not None and stored.user_id == body["user"]["id"]
        assert stored.session_token != body["sessionToken"]  # only its hash is kept


def test_the_jwks_holds_public_keys_only(api: Any) -> None:
    response = api.get("/auth/.well-known/jwks.json")

    assert response.status_code == 200
    assert "max-age" in response.headers["Cache-Control"]
    for key in response.get_json()["keys"]:
        assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["x"]
        assert "d" not in key


def test_failed_logins_all_look_the_same(api: Any, register: Register, db: Database) -> None:
    user = register()
    oauth_only = register()
    with db.sessions() as session:
        session.execute(update(User).where(User.id == oauth_only["id"]).values(password=None))
        session.commit()

    attempts = [
        {"email": unique_email("nobody"), "password": PASSWORD},
        {"email": user["email"], "password": PASSWORD + "!"},
        {"email": oauth_only["email"], "password": PASSWORD},
    ]
    responses = [api.post("/auth/login", json=attempt) for attempt in attempts]

    assert {r.status_code for r in responses} == {401}
    bodies = [_problem(r) for r in responses]
    assert bodies[0] == bodies[1] == bodies[2]
    assert {r.headers["WWW-Authenticate"] for r in responses} == {'Bearer realm="growth-diary"'}


def test_refresh_gives_a_new_access_token_for_a_live_session(api: Any, login: Login) -> None:
    body = login()

    response = api.post("/auth/refresh", json={"sessionToken": body["sessionToken"]})

    assert response.status_code == 200
    fresh = response.get_json()
    assert fresh["tokenType"] == "Bearer" and fresh["expiresIn"] == 900
    assert fresh["accessToken"] != body["accessToken"]
    assert api.get("/auth/me", headers=bearer(fresh["accessToken"])).status_code == 200


def test_refresh_refuses_unknown_and_expired_sessions(
        api: Any, login: Login, db: Database) -> None:
    body = login()
    with db.sessions() as session:
        session.execute(update(UserSession).where(UserSession.user_id == body["user"]["id"])
                        .values(expires=utcnow() - timedelta(seconds=1)))
        session.commit()

    expired = api.post("/auth/refresh", json={"sessionToken": body["sessionToken"]})
    unknown = api.post("/auth/refresh", json={"sessionToken": "not-a-session"})

    assert expired.status_code == unknown.status_code == 401
    with db.sessions() as session:  # the expired session is cleaned away
        assert session.scalars(select(UserSession).where(
            UserSession.user_id == body["user"]["id"])).first() is None


def test_logout_with_the_session_token_ends_that_session(api: Any, login: Login) -> None:
    body = login()

    response = api.post("/auth/logout", json={"sessionToken": body["sessionToken"]})

    assert response.status_code == 204
    assert api.post("/auth/refresh",
                    json={"sessionToken": body["sessionToken"]}).status_code == 401
    again = api.post("/auth/logout", json={"sessionToken": body["sessionToken"]})
    assert again.status_code == 204  # idempotent


def test_logout_with_a_bearer_token_ends_its_session_only(api: Any, register: Register) -> None:
    user = register()
    first, second = (api.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
                     .get_json() for _ in range(2))

    response = api.post("/auth/logout", headers=bearer(first["accessToken"]))

    assert response.status_code == 204
    assert api.post("/auth/refresh",
                    json={"sessionToken": first["sessionToken"]}).status_code == 401
    assert api.post("/auth/refresh",
                    json={"sessionToken": second["sessionToken"]}).status_code == 200


def test_logout_without_any_credential_is_unauthenticated(api: Any) -> None:
    assert api.post("/auth/logout", json={}).status_code == 401
    assert api.post("/auth/logout", headers=bearer("garbage")).status_code == 401


# -- my profile ----------------------------------------------------------------------------


def test_me_requires_a_valid_bearer_token(api: Any, make_token: Callable[..., str]) -> None:
    assert api.get("/auth/me").status_code == 401
    assert api.get("/auth/me", headers=bearer("not.a.jwt")).status_code == 401
    assert api.get("/auth/me", headers=bearer(make_token("someone", ttl=-60))).status_code == 401


def test_patching_me_changes_my_career_profile_and_announces_it(
        api: Any, login: Login, db: Database) -> None:
    body = login()
    changes = {"name": "Grace", "image": "https://img.example.com/g.png",
               "currentRole": " Engineer ", "experienceLevel": "SENIOR",
               "industry": "Software", "yearsOfExperience": 12,
               "currentSkills": ["Python", "SQL"], "targetSkills": ["Rust"],
               "bio": "Builds things.", "currentGoals": ["Ship auth"]}

    response = api.patch("/auth/me", json=changes, headers=bearer(body["accessToken"]))

    assert response.status_code == 200
    me = response.get_json()
    assert {k: me[k] for k in changes} == {**changes, "currentRole": "Engineer"}
    [event] = outbox_events(db, "auth.user.updated", me["id"])
    assert event["data"]["experience_level"] == "SENIOR"
    assert event["data"]["current_skills"] == ["Python", "SQL"]
    cleared = api.patch("/auth/me", json={"bio": None, "currentSkills": []},
                        headers=bearer(body["accessToken"])).get_json()
    assert cleared["bio"] is None and cleared["currentSkills"] == []


def test_patching_me_with_nothing_new_announces_nothing(
        api: Any, login: Login, db: Database) -> None:
    body = login()

    response = api.patch("/auth/me", json={"experienceLevel": "JUNIOR"},
                         headers=bearer(body["accessToken"]))

    assert response.status_code == 200
    assert outbox_events(db, "auth.user.updated", body["user"]["id"]) == []


def test_patching_me_explains_each_bad_field(api: Any, login: Login) -> None:
    body = login()
    bad = {"image": "javascript:alert(1)", "experienceLevel": "WIZARD",
           "yearsOfExperience": 81, "currentSkills": ["x"] * 51, "targetSkills": ["y" * 101],
           "bio": "b" * 2001, "name": "  ", "achievementScore": 1000,
           "dailyGenerationCount": 0, "email": "new@example.com"}

    response = api.patch("/auth/me", json=bad, headers=bearer(body["accessToken"]))

    assert response.status_code == 422
    errors = _problem(response)["errors"]
    assert {key.split(".")[0] for key in errors} == set(bad)
    assert api.get("/auth/me", headers=bearer(body["accessToken"])).get_json()[
        "experienceLevel"] == "JUNIOR"


def test_patching_me_needs_json(api: Any, login: Login) -> None:
    body = login()

    response = api.patch("/auth/me", data="name=x", headers={
        **bearer(body["accessToken"]), "Content-Type": "application/x-www-form-urlencoded"})

    assert response.status_code == 415
    assert response.mimetype == PROBLEM


# -- public profiles -----------------------------------------------------------------------


def test_a_public_profile_hides_private_fields(api: Any, register: Register) -> None:
    user = register(name="Lin")

    response = api.get(f"/auth/users/{user['id']}")

    assert response.status_code == 200
    public = response.get_json()
    assert public["name"] == "Lin" and public["achievementScore"] == 0
    for private in ("email", "password", "verified", "emailVerified", "dailyGenerationCount",
                    "lastGenerationDate", "sessionToken"):
        assert private not in public


def test_an_unknown_user_has_no_public_profile(api: Any) -> None:
    response = api.get("/auth/users/nobody")

    assert response.status_code == 404
    assert _problem(response)["status"] == 404


# -- deleting my account -------------------------------------------------------------------


def test_deleting_me_removes_everything_of_mine_and_announces_it(
        api: Any, login: Login, db: Database) -> None:
    body = login()
    user_id = body["user"]["id"]
    with db.sessions() as session:
        session.add_all([
            Account(user_id=user_id, type="oauth", provider="github",
                    provider_account_id=user_id),
            PasswordReset(user_id=user_id, token=user_id.ljust(64, "0"),
                          expires_at=utcnow() + timedelta(hours=1)),
            AchievementAward(goal_id=f"g-{user_id}", user_id=user_id, period="DAILY",
                             points=1, version=2, awarded=True),
        ])
        session.commit()

    response = api.delete("/auth/me", headers=bearer(body["accessToken"]))

    assert response.status_code == 204
    assert load_user(db, user_id) is None
    with db.sessions() as session:
        for model in (Account, UserSession, PasswordReset, AchievementAward):
            assert session.scalars(select(model).where(model.user_id == user_id)).first() is None
    [event] = outbox_events(db, "auth.user.deleted", user_id)
    assert event["data"]["user_id"] == user_id and event["data"]["deleted_at"]
    # The still-unexpired access token no longer opens anything.
    assert api.get("/auth/me", headers=bearer(body["accessToken"])).status_code == 401
    assert api.get(f"/auth/users/{user_id}").status_code == 404


# -- the service itself --------------------------------------------------------------------


def test_the_openapi_document_lists_every_route(api: Any) -> None:
    spec = api.get("/auth/openapi.json").get_json()
    # The adapter's routes are in a document of their own (the gateway does not route them).
    adapter = api.get("/auth/adapter/openapi.json").get_json()
    assert not [path for path in spec["paths"] if path.startswith("/auth/adapter/")]
    assert all(path.startswith("/auth/adapter/") for path in adapter["paths"])

    assert set(spec["paths"]) | set(adapter["paths"]) == {
        "/auth/register", "/auth/login", "/auth/refresh", "/auth/logout", "/auth/logout-all",
        "/auth/me", "/auth/me/password", "/auth/users/{user_id}", "/auth/.well-known/jwks.json",
        "/auth/verify-email", "/auth/verify-email/resend", "/auth/password-reset/request",
        "/auth/password-reset/confirm",
        # The Auth.js adapter (service credential; the gateway does not route it).
        "/auth/adapter/users", "/auth/adapter/users/{user_id}",
        "/auth/adapter/users/by-email/{email}",
        "/auth/adapter/users/by-account/{provider}/{provider_account_id}",
        "/auth/adapter/accounts", "/auth/adapter/accounts/{provider}/{provider_account_id}",
        "/auth/adapter/sessions", "/auth/adapter/sessions/lookup",
        "/auth/adapter/sessions/update", "/auth/adapter/sessions/delete",
        "/auth/adapter/verification-tokens", "/auth/adapter/verification-tokens/use"}
    assert spec["paths"]["/auth/me"]["get"]["security"] == [{"bearer": []}]


def test_without_a_signing_key_auth_refuses_to_start(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AUTH_KEYS_DIR", str(tmp_path / "none"))

    with pytest.raises(NoSigningKey, match="shared.keys generate"):
        TokenIssuer.from_settings(AuthSettings.from_env())
