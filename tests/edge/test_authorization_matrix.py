"""Who may call what, derived from the OpenAPI documents rather than a hand-kept list: every
operation of every document is called by five callers (anonymous, a garbage token, an
expired token, another member, the owner) and each answer is compared with what the
document implies:

- an operation with no security requirement is public: every caller gets its documented
  success (a token, good or bad, changes nothing);
- one whose requirement may be empty (`{}`, "optional") is public to anonymous callers, but a
  token that is sent must be valid;
- one that requires a scheme refuses the anonymous, garbage and expired callers with 401;
  another member gets 404 for the owner's resources (the path names one) and a success of
  their own where it does not; the owner gets a documented success.

The data is in tables keyed by what the documents name: a factory per path parameter (which
makes the owner's resource), a request body per operation where the schema's required
fields alone are not enough, and the documented exceptions for others (published diary
posts are readable by everyone). An operation whose path parameter has no factory, or whose
security scheme has no caller, fails the test: nothing new slips through untested.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from shared.config import SERVICES
from shared.ids import new_id
from tests.auth.smtp import MailCatcher
from tests.e2e.test_gateway import System
from tests.edge.conftest import ADAPTER_SECRET, EVERY_SERVICE_BUILT, auth_url

pytestmark = pytest.mark.skipif(not EVERY_SERVICE_BUILT, reason="every service must be built")

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase 99"
METHODS = ("get", "put", "post", "patch", "delete")
CALLERS = ("anonymous", "garbage", "expired", "other", "owner")
GARBAGE_TOKEN = "not-a-token"


# --- the people ------------------------------------------------------------------------------


@dataclass
class Member:
    id: str
    email: str
    token: str
    session_token: str


@dataclass
class World:
    """One operation's world: its owner, another member, and what the factories made."""

    system: System
    mail: MailCatcher
    mint: Callable[..., str]
    owner: Member
    other: Member
    made: dict[str, Any] = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        return self.system.url

    def call(self, method: str, path: str, token: str | None = None, *,
             base: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.request(method, (base or self.gateway) + path, headers=headers,
                                timeout=15, **kwargs)

    def adapter(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.call(method, path, ADAPTER_SECRET, base=auth_url(self.system), **kwargs)

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self.made:
            self.made[key] = make()
        return self.made[key]


def register(system: System, *, name: str = "Member",
             mint: Callable[..., str] | None = None) -> Member:
    """A member with PASSWORD, logged in (or, given `mint`, with a token signed as auth
    would sign it and no session: one argon2 hash fewer)."""
    email = f"{new_id()}@example.com"
    registered = requests.post(f"{system.url}/auth/register", timeout=15,
                               json={"email": email, "password": PASSWORD, "name": name})
    assert registered.status_code == 201, registered.text
    user_id = registered.json()["id"]
    if mint is not None:
        return Member(user_id, email, mint(user_id), "")
    login = requests.post(f"{system.url}/auth/login", timeout=15,
                          json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return Member(user_id, email, login.json()["accessToken"], login.json()["sessionToken"])


def created(response: requests.Response, what: str) -> Any:
    assert response.status_code in (200, 201, 202), f"making {what}: {response.status_code} " \
                                                     f"{response.text}"
    return response.json()


# --- resources, one factory per path parameter: each makes the owner's ------------------------
# A parameter not named here fails the test; adjust a factory in a line when a contract changes.


def weeks_ago(weeks: int) -> str:
    year, week, _ = (datetime.now(UTC) - timedelta(days=7 * weeks)).isocalendar()
    return f"{year}-W{week:02d}"


def last_week() -> str:
    return weeks_ago(1)


def make_post(w: World) -> str:
    return str(w.once("post", lambda: created(w.call(
        "POST", "/diary/posts", w.owner.token,
        json={"title": "A published post", "content": "Read me", "status": "PUBLISHED"}),
        "a post")["id"]))


def make_reply(w: World) -> str:
    return str(w.once("reply", lambda: created(w.call(
        "POST", f"/diary/posts/{make_post(w)}/replies", w.owner.token,
        json={"content": "A reply"}), "a reply")["id"]))


def make_story(w: World) -> str:
    # Not last week: every caller's POST /stories/generate asks for that one, and a story is
    # addressed by its period, so another member's own last-week story would answer them.
    period = weeks_ago(2)
    w.once("story", lambda: created(w.call("POST", "/stories/generate", w.owner.token,
                                           json={"period": period}), "a story"))
    return period


def make_account(w: World) -> dict[str, Any]:
    return dict(w.once("account", lambda: created(w.adapter("POST", "/auth/adapter/accounts", json={
        "userId": w.owner.id, "type": "oauth", "provider": "github",
        "providerAccountId": new_id()}), "an account")))


FACTORIES: dict[str, Callable[[World], str]] = {
    "goal_id": lambda w: str(w.once("goal", lambda: created(w.call(
        "POST", "/goals", w.owner.token, json={"title": "Ship it", "period": "WEEKLY"}),
        "a goal")["id"])),
    "post_id": make_post,
    "reply_id": make_reply,
    "period": make_story,
    "user_id": lambda w: w.owner.id,
    "email": lambda w: w.owner.email,
    "provider": lambda w: str(make_account(w)["provider"]),
    "provider_account_id": lambda w: str(make_account(w)["providerAccountId"]),
}


# --- bodies, where the schema's required fields are not enough (made for each call) ----------


def link_token(w: World, email: str, kind: str) -> str:
    return w.mail.wait_for_link(email, kind, timeout=15)


def verification_body(w: World) -> dict[str, Any]:
    member = register(w.system)
    return {"token": link_token(w, member.email, "verify-email")}


def reset_body(w: World) -> dict[str, Any]:
    member = register(w.system)
    assert w.call("POST", "/auth/password-reset/request",
                  json={"email": member.email}).status_code == 202
    return {"token": link_token(w, member.email, "reset-password"), "password": NEW_PASSWORD}


def adapter_session(w: World) -> dict[str, Any]:
    return dict(w.once("session", lambda: created(w.adapter("POST", "/auth/adapter/sessions", json={
        "sessionToken": new_id(), "userId": w.owner.id,
        "expires": (datetime.now(UTC) + timedelta(days=1)).isoformat()}), "a session")))


def adapter_verification(w: World) -> dict[str, Any]:
    return dict(w.once("verification", lambda: created(w.adapter(
        "POST", "/auth/adapter/verification-tokens", json={
            "identifier": w.owner.email, "token": new_id(),
            "expires": (datetime.now(UTC) + timedelta(days=1)).isoformat()}),
        "a verification token")))


BODIES: dict[tuple[str, str], Callable[[World], Any]] = {
    ("POST", "/auth/register"): lambda w: {"email": f"{new_id()}@example.com",
                                           "password": PASSWORD},
    ("POST", "/auth/login"): lambda w: {"email": w.owner.email, "password": PASSWORD},
    ("POST", "/auth/refresh"): lambda w: {"sessionToken": w.owner.session_token},
    ("POST", "/auth/logout"): lambda w: {"sessionToken": w.owner.session_token},
    ("POST", "/auth/verify-email"): verification_body,
    ("POST", "/auth/password-reset/request"): lambda w: {"email": w.owner.email},
    ("POST", "/auth/password-reset/confirm"): reset_body,
    ("POST", "/auth/me/password"): lambda w: {"currentPassword": PASSWORD,
                                              "newPassword": NEW_PASSWORD},
    ("POST", "/auth/adapter/users"): lambda w: {"email": f"{new_id()}@example.com"},
    ("POST", "/auth/adapter/accounts"): lambda w: {
        "userId": w.owner.id, "type": "oauth", "provider": "github",
        "providerAccountId": new_id()},
    ("POST", "/auth/adapter/sessions"): lambda w: {
        "sessionToken": new_id(), "userId": w.owner.id,
        "expires": (datetime.now(UTC) + timedelta(days=1)).isoformat()},
    ("POST", "/auth/adapter/sessions/lookup"): lambda w: {
        "sessionToken": adapter_session(w)["sessionToken"]},
    ("POST", "/auth/adapter/sessions/update"): lambda w: {
        "sessionToken": adapter_session(w)["sessionToken"]},
    ("POST", "/auth/adapter/sessions/delete"): lambda w: {
        "sessionToken": adapter_session(w)["sessionToken"]},
    ("POST", "/auth/adapter/verification-tokens"): lambda w: {
        "identifier": w.owner.email, "token": new_id(),
        "expires": (datetime.now(UTC) + timedelta(days=1)).isoformat()},
    ("POST", "/auth/adapter/verification-tokens/use"): lambda w: {
        "identifier": w.owner.email, "token": adapter_verification(w)["token"]},
    ("POST", "/diary/posts"): lambda w: {"title": "A post", "content": "Words",
                                         "status": "PUBLISHED"},
    ("POST", "/diary/posts/{post_id}/replies"): lambda w: {"content": "A reply"},
    ("PATCH", "/diary/posts/{post_id}"): lambda w: {"title": "Changed"},
    ("PATCH", "/diary/replies/{reply_id}"): lambda w: {"content": "Changed"},
    ("POST", "/stories/generate"): lambda w: {"period": last_week()},
}

# What another member gets where it is not 404: the documented public answers (DESIGN.md).
# Published posts are everyone's to read, like and reply to; a member's published posts are a
# public listing. A draft is the owner's alone (404), as every goal and story is.
OTHERS: dict[tuple[str, str], str] = {
    ("GET", "/diary/posts/{post_id}"): "success",
    ("PUT", "/diary/posts/{post_id}/like"): "success",
    ("DELETE", "/diary/posts/{post_id}/like"): "success",
    ("GET", "/diary/posts/{post_id}/likes"): "success",
    ("GET", "/diary/posts/{post_id}/replies"): "success",
    ("POST", "/diary/posts/{post_id}/replies"): "success",
    ("GET", "/diary/users/{user_id}/posts"): "success",
}


# --- the matrix --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    document: str
    method: str
    path: str
    spec: dict[str, Any]
    security: list[dict[str, list[str]]]
    base: str

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path

    @property
    def successes(self) -> set[int]:
        return {int(s) for s in self.spec.get("responses", {}) if s.startswith("2")}

    @property
    def parameters(self) -> list[str]:
        return re.findall(r"{([^}]+)}", self.path)


def operations(name: str, document: dict[str, Any], base: str) -> Iterator[Operation]:
    for path, item in document["paths"].items():
        for method, spec in item.items():
            if method in METHODS:
                security = spec.get("security", document.get("security", []))
                yield Operation(name, method.upper(), path, spec, security, base)


def schemes(op: Operation) -> set[str]:
    return {name for requirement in op.security for name in requirement}


def expectation(op: Operation, caller: str) -> str:
    """"success" (a documented 2xx), or the one status the caller must get."""
    optional = not op.security or {} in op.security
    if not op.security:
        return "success"
    if caller == "anonymous":
        return "success" if optional else "401"
    if caller in ("garbage", "expired"):
        return "401"
    if schemes(op) == {"serviceCredential"}:
        return "success" if caller == "owner" else "401"
    if caller == "other" and op.parameters:
        return OTHERS.get(op.key, "404")
    return "success"


def minimal_body(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """The required fields with the plainest values the schema allows; a real body from
    BODIES where that is not enough (the owner's call then fails, naming the operation)."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    body: dict[str, Any] = {}
    for name in schema.get("required", []):
        prop = schema["properties"][name]
        if "$ref" in prop:
            prop = components[prop["$ref"].rsplit("/", 1)[-1]]
        if "enum" in prop:
            body[name] = prop["enum"][0]
        elif prop.get("type") == "integer":
            body[name] = prop.get("minimum", 1)
        elif prop.get("format") == "date-time":
            body[name] = datetime.now(UTC).isoformat()
        else:
            body[name] = "x" * max(1, prop.get("minLength", 1))
    return body


class Matrix:
    def __init__(self, system: System, mail: MailCatcher, mint: Callable[..., str]) -> None:
        self.system, self.mail, self.mint = system, mail, mint
        self.cases = 0
        self.unexpected: list[str] = []
        self.members: tuple[Member, Member] | None = None

    def alive(self, member: Member) -> bool:
        return requests.get(f"{self.system.url}/auth/me", timeout=15, headers={
            "Authorization": f"Bearer {member.token}"}).status_code == 200

    def world(self, op: Operation) -> World:
        """New members for each of auth's operations (they act on accounts: delete, log out,
        change the password); elsewhere the same two while both are still there."""
        if op.document == "auth" or self.members is None or not all(
                self.alive(member) for member in self.members):
            self.members = (register(self.system),
                            register(self.system, name="Other", mint=self.mint))
        owner, other = self.members
        return World(self.system, self.mail, self.mint, owner=owner, other=other)

    def token(self, op: Operation, caller: str, w: World) -> str | None:
        if caller == "anonymous":
            return None
        if caller == "garbage":
            return GARBAGE_TOKEN
        if caller == "expired":
            now = int(time.time())
            return self.mint(w.owner.id, iat=now - 3600, exp=now - 60)
        member = w.owner if caller == "owner" else w.other
        if caller == "owner" and schemes(op) == {"serviceCredential"}:
            return ADAPTER_SECRET
        return member.token

    def run(self, op: Operation, document: dict[str, Any]) -> None:
        problems = [f"{op.method} {op.path}: no factory for {{{name}}} (add one to FACTORIES)"
                    for name in op.parameters if name not in FACTORIES]
        problems += [f"{op.method} {op.path}: no caller for security scheme {name!r}"
                     for name in schemes(op) - {"bearer", "serviceCredential"}]
        if not op.successes:
            problems.append(f"{op.method} {op.path}: no documented success")
        if problems:
            self.unexpected += problems
            return
        w = self.world(op)
        path = op.path
        for name in op.parameters:
            path = path.replace(f"{{{name}}}", requests.utils.quote(FACTORIES[name](w), safe=""))
        components = document.get("components", {}).get("schemas", {})
        for caller in CALLERS:  # the owner last: its call may end the resource
            kwargs: dict[str, Any] = {}
            if op.key in BODIES:
                kwargs["json"] = BODIES[op.key](w)
            elif "requestBody" in op.spec:
                schema = op.spec["requestBody"]["content"]["application/json"]["schema"]
                kwargs["json"] = minimal_body(schema, components)
            answer = w.call(op.method, path, self.token(op, caller, w), base=op.base, **kwargs)
            self.cases += 1
            expected = expectation(op, caller)
            ok = (answer.status_code in op.successes if expected == "success"
                  else str(answer.status_code) == expected)
            if not ok:
                self.unexpected.append(
                    f"{op.method} {op.path} as {caller}: {answer.status_code}, expected "
                    f"{expected if expected != 'success' else sorted(op.successes)} "
                    f"({answer.text[:160]})")


@pytest.fixture(scope="module")
def matrix(edge_system: System, edge_mail: MailCatcher,
           make_token: Callable[..., str]) -> Matrix:
    return Matrix(edge_system, edge_mail, make_token)


def documents(system: System) -> dict[str, tuple[str, str]]:
    """name -> (document URL, the base its operations are called at)."""
    docs = {svc: (f"{system.url}/{svc}/openapi.json", system.url) for svc in SERVICES}
    docs["auth-adapter"] = (f"{auth_url(system)}/auth/adapter/openapi.json", auth_url(system))
    return docs


@pytest.mark.parametrize("name", [*SERVICES, "auth-adapter"])
def test_every_operation_answers_only_its_callers(matrix: Matrix, name: str) -> None:
    location, base = documents(matrix.system)[name]
    document = requests.get(location, timeout=15).json()
    ops = list(operations(name, document, base))
    assert ops, f"{name}: the document has no operations"
    before_cases, before_unexpected = matrix.cases, len(matrix.unexpected)
    for op in ops:
        matrix.run(op, document)
    unexpected = matrix.unexpected[before_unexpected:]
    print(f"\n{name}: {len(ops)} operations, {matrix.cases - before_cases} cases, "
          f"{len(unexpected)} unexpected")
    assert not unexpected, "\n".join(unexpected)


# --- the matrix's own rules, without the system ------------------------------------------------


def op(path: str, security: list[dict[str, list[str]]], method: str = "GET") -> Operation:
    return Operation("test", method, path, {"responses": {"200": {}}}, security, "")


@pytest.mark.parametrize("security,expected", [
    ([], ["success"] * 5),
    ([{}, {"bearer": []}], ["success", "401", "401", "404", "success"]),
    ([{"bearer": []}], ["401", "401", "401", "404", "success"]),
    ([{"serviceCredential": []}], ["401", "401", "401", "401", "success"]),
], ids=["public", "optional", "bearer", "service-credential"])
def test_what_each_caller_must_get_follows_from_the_security_requirement(
        security: list[dict[str, list[str]]], expected: list[str]) -> None:
    assert [expectation(op("/goals/{goal_id}", security), c) for c in CALLERS] == expected
    if security == [{"bearer": []}]:  # no resource of the owner's named: their own success
        assert expectation(op("/goals", security), "other") == "success"


def test_an_operation_the_matrix_cannot_call_fails_it() -> None:
    matrix = Matrix(None, None, lambda *_: "")  # type: ignore[arg-type]
    matrix.run(op("/things/{thing_id}", [{"bearer": []}]), {})
    matrix.run(op("/goals", [{"apiKey": []}]), {})
    matrix.run(Operation("test", "GET", "/goals", {"responses": {"404": {}}}, [], ""), {})
    assert matrix.unexpected == [
        "GET /things/{thing_id}: no factory for {thing_id} (add one to FACTORIES)",
        "GET /goals: no caller for security scheme 'apiKey'",
        "GET /goals: no documented success",
    ]
