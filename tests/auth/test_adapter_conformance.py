"""The Auth.js adapter API against Auth.js's own conformance suite (packages/utils/adapter.ts
in nextauthjs/next-auth), one test per behaviour, plus what our edge adds: the service
credential, hashed secrets, events and the tombstone.

`Adapter` below plays the client-side adapter of docs/authjs-adapter.md: one method per
Auth.js method, over HTTP. `Rows` plays the suite's `db` helpers: straight from the tables.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select

from services.auth.models import Account, User, UserSession, VerificationToken
from shared.db import Database
from shared.ids import new_id
from tests.auth.support import outbox_events, unique_email

SECRET = "test-adapter-secret-" + uuid.uuid4().hex
PROBLEM = "application/problem+json"


def js_date(when: datetime) -> str:
    """What JSON.stringify(new Date(...)) sends: milliseconds, 'Z'."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def from_now(**delta: float) -> datetime:
    """A future instant at JavaScript's (millisecond) precision."""
    when = datetime.now(UTC) + timedelta(**delta)
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Adapter:
    """Auth.js's Adapter interface, spoken over HTTP (dates come back as datetimes)."""

    def __init__(self, api: Any, secret: str = SECRET) -> None:
        self.api = api
        self.headers = {"Authorization": f"Bearer {secret}"}

    def call(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = self.api.open(f"/auth/adapter{path}", method=method, json=body,
                                 headers=self.headers)
        assert response.status_code == status, response.get_data(as_text=True)
        return response.get_json()

    @staticmethod
    def _user(user: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if user is None else {**user, "emailVerified": parse(user["emailVerified"])}

    @staticmethod
    def _dated(value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else {**value, "expires": parse(value["expires"])}

    def create_user(self, user: dict[str, Any]) -> dict[str, Any]:
        body = {**user, "emailVerified": user["emailVerified"] and js_date(user["emailVerified"])}
        created = self._user(self.call("POST", "/users", body, 201))
        assert created is not None
        return created

    def get_user(self, user_id: str) -> dict[str, Any] | None:
        return self._user(self.call("GET", f"/users/{quote(user_id, safe='')}"))

    def get_user_by_email(self, email: str) -> dict[str, Any] | None:
        return self._user(self.call("GET", f"/users/by-email/{quote(email, safe='')}"))

    def get_user_by_account(self, provider: str, provider_account_id: str) -> Any:
        path = f"/users/by-account/{quote(provider, safe='')}/{quote(provider_account_id, safe='')}"
        return self._user(self.call("GET", path))

    def update_user(self, user: dict[str, Any]) -> dict[str, Any]:
        body = {k: js_date(v) if isinstance(v, datetime) else v for k, v in user.items()}
        updated = self._user(self.call("PATCH", f"/users/{user['id']}", body))
        assert updated is not None
        return updated

    def delete_user(self, user_id: str) -> dict[str, Any] | None:
        return self._user(self.call("DELETE", f"/users/{user_id}"))

    def link_account(self, account: dict[str, Any]) -> dict[str, Any]:
        return dict(self.call("POST", "/accounts", account, 201))

    def _account_path(self, provider: str, provider_account_id: str) -> str:
        return f"/accounts/{quote(provider, safe='')}/{quote(provider_account_id, safe='')}"

    def get_account(self, provider_account_id: str, provider: str) -> Any:
        return self.call("GET", self._account_path(provider, provider_account_id))

    def unlink_account(self, provider: str, provider_account_id: str) -> Any:
        return self.call("DELETE", self._account_path(provider, provider_account_id))

    def create_session(self, session: dict[str, Any]) -> dict[str, Any]:
        body = {**session, "expires": js_date(session["expires"])}
        created = self._dated(self.call("POST", "/sessions", body, 201))
        assert created is not None
        return created

    def get_session_and_user(self, session_token: str) -> dict[str, Any] | None:
        found = self.call("POST", "/sessions/lookup", {"sessionToken": session_token})
        if found is None:
            return None
        return {"session": self._dated(found["session"]), "user": self._user(found["user"])}

    def update_session(self, session: dict[str, Any]) -> dict[str, Any] | None:
        body = {k: js_date(v) if isinstance(v, datetime) else v for k, v in session.items()}
        return self._dated(self.call("POST", "/sessions/update", body))

    def delete_session(self, session_token: str) -> dict[str, Any] | None:
        return self._dated(self.call("POST", "/sessions/delete", {"sessionToken": session_token}))

    def create_verification_token(self, token: dict[str, Any]) -> dict[str, Any] | None:
        body = {**token, "expires": js_date(token["expires"])}
        return self._dated(self.call("POST", "/verification-tokens", body, 201))

    def use_verification_token(self, identifier: str, token: str) -> dict[str, Any] | None:
        return self._dated(self.call("POST", "/verification-tokens/use",
                                     {"identifier": identifier, "token": token}))


class Rows:
    """The suite's `db` helpers: rows in Auth.js's shape, read straight from auth's tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def user(self, user_id: str) -> dict[str, Any] | None:
        with self.db.sessions() as session:
            user = session.get(User, user_id)
            if user is None:
                return None
            return {"id": user.id, "name": user.name, "email": user.email,
                    "emailVerified": user.email_verified, "image": user.image}

    def session(self, session_token: str) -> dict[str, Any] | None:
        """Found by the token's hash; `sessionToken` is what the table holds (the hash)."""
        with self.db.sessions() as db_session:
            row = db_session.scalars(select(UserSession).where(
                UserSession.session_token == sha256(session_token))).first()
            if row is None:
                return None
            return {"id": row.id, "sessionToken": row.session_token, "userId": row.user_id,
                    "expires": row.expires}

    def account(self, provider: str, provider_account_id: str) -> dict[str, Any] | None:
        with self.db.sessions() as session:
            row = session.scalars(select(Account).where(
                Account.provider == provider,
                Account.provider_account_id == provider_account_id)).first()
            if row is None:
                return None
            return {"id": row.id, "userId": row.user_id, "type": row.type,
                    "provider": row.provider, "providerAccountId": row.provider_account_id,
                    **{name: getattr(row, name) for name in OAUTH_FIELDS}}

    def verification_token(self, identifier: str, token: str) -> dict[str, Any] | None:
        with self.db.sessions() as session:
            row = session.scalars(select(VerificationToken).where(
                VerificationToken.identifier == identifier,
                VerificationToken.token == sha256(token))).first()
            if row is None:
                return None
            return {"identifier": row.identifier, "token": row.token, "expires": row.expires}


OAUTH_FIELDS = ("refresh_token", "access_token", "expires_at", "token_type", "scope",
                "id_token", "session_state")


@pytest.fixture(autouse=True)
def adapter_secret(configure_auth: Callable[..., None]) -> Iterator[str]:
    configure_auth(adapter_secret=SECRET)  # as AUTH_ADAPTER_SECRET would
    yield SECRET


@pytest.fixture
def adapter(api: Any) -> Adapter:
    return Adapter(api)


@pytest.fixture
def rows(db: Database) -> Rows:
    return Rows(db)


def user_fixture() -> dict[str, Any]:
    """The suite's user (with an email of its own, as this database outlives one test)."""
    return {"id": str(uuid.uuid4()), "email": unique_email("fill"),
            "image": "https://www.fillmurray.com/460/300", "name": "Fill Murray",
            "emailVerified": from_now()}


def account_fixture(user_id: str, *, provider: str = "github") -> dict[str, Any]:
    return {"userId": user_id, "provider": provider, "providerAccountId": str(uuid.uuid4()),
            "type": "oauth", "access_token": str(uuid.uuid4()),
            "expires_at": 30 * 24 * 3600, "id_token": str(uuid.uuid4()),
            "refresh_token": str(uuid.uuid4()), "token_type": "bearer", "scope": "user",
            "session_state": str(uuid.uuid4())}


def verification_token_fixture(identifier: str = "info@example.com") -> dict[str, Any]:
    """Auth.js hands adapters a token it has already hashed with its own secret, as here."""
    return {"identifier": identifier, "token": sha256(f"{uuid.uuid4()}anything"),
            "expires": from_now(minutes=15)}


@pytest.fixture
def user(adapter: Adapter) -> dict[str, Any]:
    return adapter.create_user(user_fixture())


@pytest.fixture
def session(adapter: Adapter, user: dict[str, Any]) -> dict[str, Any]:
    return adapter.create_session({"sessionToken": str(uuid.uuid4()), "userId": user["id"],
                                   "expires": from_now(days=7)})


@pytest.fixture
def account(adapter: Adapter, user: dict[str, Any]) -> dict[str, Any]:
    account = account_fixture(user["id"])
    adapter.link_account(account)
    return account


# -- the suite -----------------------------------------------------------------------------


def test_every_adapter_method_has_a_route(api: Any) -> None:
    # The adapter has a document of its own (the gateway does not route it): none of its
    # routes is in the public one.
    assert not [p for p in api.get("/auth/openapi.json").get_json()["paths"]
                if p.startswith("/auth/adapter/")]
    paths = api.get("/auth/adapter/openapi.json").get_json()["paths"]
    summaries = {op["summary"].split(":")[0]
                 for path, ops in paths.items() if path.startswith("/auth/adapter/")
                 for op in ops.values() if isinstance(op, dict) and "summary" in op}

    assert summaries == {
        "createUser", "getUser", "getUserByEmail", "getUserByAccount", "updateUser",
        "deleteUser", "linkAccount", "unlinkAccount", "getAccount", "createSession",
        "getSessionAndUser", "updateSession", "deleteSession", "createVerificationToken",
        "useVerificationToken"}


def test_create_user_stores_the_user_it_returns(adapter: Adapter, rows: Rows,
                                                db: Database) -> None:
    given = user_fixture()

    created = adapter.create_user(given)

    assert rows.user(created["id"]) == {**given, "id": created["id"]}
    assert created == {**given, "id": created["id"]}
    assert created["id"] != given["id"], "ids are ours (cuid), as with the Prisma adapter"
    [event] = outbox_events(db, "auth.user.registered", created["id"])
    assert event["data"]["name"] == "Fill Murray"


def test_get_user_is_null_for_an_unknown_id(adapter: Adapter, user: dict[str, Any]) -> None:
    assert adapter.get_user(str(uuid.uuid4())) is None
    assert adapter.get_user(user["id"]) == user


def test_get_user_by_email_is_null_for_an_unknown_email(adapter: Adapter,
                                                       user: dict[str, Any]) -> None:
    assert adapter.get_user_by_email("non-existent-email") is None
    assert adapter.get_user_by_email(user["email"]) == user
    assert adapter.get_user_by_email(user["email"].upper()) == user


def test_create_session_stores_only_the_tokens_hash(adapter: Adapter, rows: Rows,
                                                    user: dict[str, Any]) -> None:
    given = {"sessionToken": str(uuid.uuid4()), "userId": user["id"],
             "expires": from_now(days=7)}

    created = adapter.create_session(given)

    assert created == {**given, "id": created["id"]}
    assert rows.session(given["sessionToken"]) == {
        **given, "id": created["id"], "sessionToken": sha256(given["sessionToken"])}


def test_get_session_and_user_is_null_for_an_invalid_token(
        adapter: Adapter, user: dict[str, Any], session: dict[str, Any]) -> None:
    assert adapter.get_session_and_user("invalid-token") is None

    assert adapter.get_session_and_user(session["sessionToken"]) == {
        "user": user, "session": session}


def test_update_user_changes_what_it_is_given(adapter: Adapter, rows: Rows, db: Database,
                                              user: dict[str, Any]) -> None:
    returned = adapter.update_user({"id": user["id"], "name": "Updated Name"})

    assert returned == {**user, "name": "Updated Name"}
    stored = rows.user(user["id"])
    assert stored is not None and stored["name"] == "Updated Name"
    [event] = outbox_events(db, "auth.user.updated", user["id"])
    assert event["data"]["name"] == "Updated Name"


def test_update_session_moves_its_expiry(adapter: Adapter, rows: Rows,
                                         session: dict[str, Any]) -> None:
    expires = from_now(days=30)
    before = rows.session(session["sessionToken"])
    assert before is not None and before["expires"] != expires

    returned = adapter.update_session({"sessionToken": session["sessionToken"],
                                       "expires": expires})

    assert returned == {**session, "expires": expires}
    after = rows.session(session["sessionToken"])
    assert after is not None and after["expires"] == expires


def test_link_account_stores_every_oauth_field(adapter: Adapter, rows: Rows,
                                               user: dict[str, Any]) -> None:
    given = account_fixture(user["id"])

    linked = adapter.link_account(given)

    assert linked == {**given, "id": linked["id"]}
    assert rows.account(given["provider"], given["providerAccountId"]) == {
        **given, "id": linked["id"]}


def test_get_user_by_account_is_null_for_an_unknown_account(
        adapter: Adapter, user: dict[str, Any], account: dict[str, Any]) -> None:
    assert adapter.get_user_by_account("invalid-provider", "invalid-provider-account-id") is None

    assert adapter.get_user_by_account(account["provider"], account["providerAccountId"]) == user


def test_unlink_account_removes_it(adapter: Adapter, rows: Rows,
                                   account: dict[str, Any]) -> None:
    key = (account["provider"], account["providerAccountId"])
    stored = rows.account(*key)
    assert stored == {**account, "id": stored and stored["id"]}

    unlinked = adapter.unlink_account(*key)

    assert unlinked == stored
    assert rows.account(*key) is None
    assert adapter.unlink_account(*key) is None


def test_delete_session_removes_it(adapter: Adapter, rows: Rows,
                                   session: dict[str, Any]) -> None:
    deleted = adapter.delete_session(session["sessionToken"])

    assert deleted == session
    assert rows.session(session["sessionToken"]) is None
    assert adapter.delete_session(session["sessionToken"]) is None


def test_create_verification_token_stores_only_its_hash(adapter: Adapter, rows: Rows) -> None:
    given = verification_token_fixture()

    created = adapter.create_verification_token(given)

    assert created == given
    assert rows.verification_token(given["identifier"], given["token"]) == {
        **given, "token": sha256(given["token"])}


def test_use_verification_token_returns_it_once(adapter: Adapter, rows: Rows) -> None:
    given = verification_token_fixture()
    adapter.create_verification_token(given)

    first = adapter.use_verification_token(given["identifier"], given["token"])
    second = adapter.use_verification_token(given["identifier"], given["token"])

    assert first == given
    assert second is None
    assert rows.verification_token(given["identifier"], given["token"]) is None


def test_use_verification_token_for_another_identifier_is_null_and_spends_nothing(
        adapter: Adapter) -> None:
    given = verification_token_fixture(unique_email("info"))
    adapter.create_verification_token(given)

    assert adapter.use_verification_token("someone-else@example.com", given["token"]) is None
    assert adapter.use_verification_token(given["identifier"], given["token"]) == given


def test_delete_user_cascades_to_sessions_and_accounts(
        adapter: Adapter, rows: Rows, user: dict[str, Any], session: dict[str, Any],
        account: dict[str, Any]) -> None:
    assert rows.user(user["id"]) == user

    deleted = adapter.delete_user(user["id"])

    assert deleted == user
    assert rows.user(user["id"]) is None
    assert rows.session(session["sessionToken"]) is None
    assert rows.account(account["provider"], account["providerAccountId"]) is None


def test_get_account_is_null_unless_provider_and_id_both_match(
        adapter: Adapter, rows: Rows) -> None:
    local_user = adapter.create_user({"id": str(uuid.uuid4()),
                                      "email": unique_email("getAccount"),
                                      "emailVerified": None})
    provider, provider_account_id = "auth0", str(uuid.uuid4())
    adapter.link_account({"provider": provider, "providerAccountId": provider_account_id,
                          "type": "oauth", "userId": local_user["id"]})

    assert adapter.get_account("invalid-provider-account-id", "invalid-provider") is None
    assert adapter.get_account(provider_account_id, "invalid-provider") is None
    assert adapter.get_account("invalid-provider-account-id", provider) is None
    valid = adapter.get_account(provider_account_id, provider)
    assert valid is not None
    assert rows.account(provider, provider_account_id) == valid


# -- what our edge adds --------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong-secret"}, {"Authorization": f"Basic {SECRET}"},
    {"Authorization": "Bearer ünïcode"},
], ids=["none", "wrong", "not-bearer", "non-ascii"])
def test_the_service_credential_is_required(api: Any, user: dict[str, Any],
                                            headers: dict[str, str]) -> None:
    for method, path, body in [("GET", f"/users/{user['id']}", None),
                               ("POST", "/users", user_fixture() | {"emailVerified": None}),
                               ("DELETE", f"/users/{user['id']}", None),
                               ("POST", "/sessions/lookup", {"sessionToken": "x"})]:
        response = api.open(f"/auth/adapter{path}", method=method, json=body, headers=headers)

        assert response.status_code == 401, (method, path)
        assert response.mimetype == PROBLEM
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert Adapter(api).get_user(user["id"]) == user


def test_without_a_configured_secret_the_adapter_is_disabled(
        api: Any, configure_auth: Callable[..., None]) -> None:
    configure_auth(adapter_secret="")

    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": f"Bearer {SECRET}"}):
        response = api.get("/auth/adapter/users/anyone", headers=headers)

        assert response.status_code == 503
        assert response.mimetype == PROBLEM
        assert "adapter disabled" in response.get_json()["detail"]


def test_delete_user_announces_the_deletion_and_leaves_a_tombstone(
        adapter: Adapter, db: Database, user: dict[str, Any]) -> None:
    adapter.delete_user(user["id"])

    [event] = outbox_events(db, "auth.user.deleted", user["id"])
    assert event["data"]["user_id"] == user["id"]
    with db.sessions() as session:
        tombstone = db.tombstones
        assert session.execute(select(tombstone).where(
            tombstone.c.user_id == user["id"])).first() is not None


def test_deleting_an_unknown_user_is_null_and_announces_nothing(
        adapter: Adapter, db: Database) -> None:
    user_id = str(uuid.uuid4())

    assert adapter.delete_user(user_id) is None
    assert outbox_events(db, "auth.user.deleted", user_id) == []


def test_an_oauth_user_has_no_password_and_is_verified_only_with_email_verified(
        adapter: Adapter, db: Database) -> None:
    oauth = adapter.create_user({**user_fixture(), "emailVerified": None})
    by_email = adapter.create_user(user_fixture())

    with db.sessions() as session:
        stored = {u.id: u for u in session.scalars(
            select(User).where(User.id.in_([oauth["id"], by_email["id"]])))}
    assert stored[oauth["id"]].password is None and stored[by_email["id"]].password is None
    assert stored[oauth["id"]].verified is False
    assert stored[by_email["id"]].verified is True


def test_an_email_is_never_linked_to_an_existing_user_by_itself(
        adapter: Adapter, user: dict[str, Any]) -> None:
    """createUser with a taken email is refused; linking is only ever what userId says."""
    response = adapter.api.post("/auth/adapter/users", headers=adapter.headers,
                                json={**user_fixture(), "email": user["email"].upper(),
                                      "emailVerified": None})

    assert response.status_code == 409
    assert response.mimetype == PROBLEM


def test_a_provider_account_can_be_linked_only_once(adapter: Adapter, user: dict[str, Any],
                                                    account: dict[str, Any]) -> None:
    other = adapter.create_user({**user_fixture(), "emailVerified": None})

    response = adapter.api.post("/auth/adapter/accounts", headers=adapter.headers,
                                json={**account, "userId": other["id"]})

    assert response.status_code == 409
    assert adapter.get_user_by_account(account["provider"], account["providerAccountId"]) == user


def test_bad_input_is_a_problem_naming_the_field(adapter: Adapter) -> None:
    cases = [
        ("/users", {"name": "No Email", "emailVerified": None}, "email"),
        ("/accounts", {**account_fixture(str(uuid.uuid4())), "type": "saml"}, "type"),
        ("/accounts", account_fixture(new_id()), "userId"),  # no such user
        ("/accounts", account_fixture("x" * 33), "userId"),  # could not be one of ours
        ("/sessions", {"sessionToken": "t", "userId": new_id(),
                       "expires": js_date(from_now(days=1))}, "userId"),
        ("/sessions", {"sessionToken": "t", "userId": "u", "expires": "tomorrow"}, "expires"),
        ("/verification-tokens", {"identifier": "a@example.com", "token": ""}, "token"),
    ]
    for path, body, field in cases:
        response = adapter.api.post(f"/auth/adapter{path}", headers=adapter.headers, json=body)

        assert response.status_code == 422, (path, response.get_json())
        assert response.mimetype == PROBLEM
        assert field in response.get_json()["errors"], (path, response.get_json())


def test_updating_an_unknown_user_is_not_found(adapter: Adapter) -> None:
    response = adapter.api.patch(f"/auth/adapter/users/{uuid.uuid4()}", headers=adapter.headers,
                                 json={"name": "Nobody"})

    assert response.status_code == 404
    assert response.mimetype == PROBLEM


def test_updating_an_unknown_session_is_null(adapter: Adapter) -> None:
    assert adapter.update_session({"sessionToken": "no-such-session",
                                   "expires": from_now(days=1)}) is None


def test_ids_with_slashes_and_emails_with_plus_travel_in_paths(
        adapter: Adapter, user: dict[str, Any]) -> None:
    plus = adapter.create_user({**user_fixture(), "email": unique_email("a+b"),
                                "emailVerified": None})
    account = {**account_fixture(user["id"], provider="email"),
               "providerAccountId": "team/42@example.com", "type": "email"}
    adapter.link_account(account)

    assert adapter.get_user_by_email(plus["email"]) == plus
    assert adapter.get_user_by_account("email", "team/42@example.com") == user
    assert adapter.get_account("team/42@example.com", "email") is not None


def test_adapter_responses_are_never_cached(api: Any, user: dict[str, Any]) -> None:
    response = Adapter(api).api.get(f"/auth/adapter/users/{user['id']}",
                                    headers={"Authorization": f"Bearer {SECRET}"})

    assert response.headers["Cache-Control"] == "no-store"


def test_an_authjs_session_refreshes_into_an_access_token_for_the_other_services(
        api: Any, adapter: Adapter, user: dict[str, Any], session: dict[str, Any]) -> None:
    """Adapter sessions are auth's sessions: the Next.js server can call goals, diary..."""
    response = api.post("/auth/refresh", json={"sessionToken": session["sessionToken"]})

    assert response.status_code == 200
    me = api.get("/auth/me", headers={
        "Authorization": f"Bearer {response.get_json()['accessToken']}"})
    assert me.get_json()["id"] == user["id"]
    adapter.delete_session(session["sessionToken"])
    assert api.post("/auth/refresh",
                    json={"sessionToken": session["sessionToken"]}).status_code == 401
