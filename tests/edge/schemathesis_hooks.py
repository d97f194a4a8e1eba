"""Schemathesis hooks for tests/edge/test_schemathesis.py (loaded by the CLI through
SCHEMATHESIS_HOOKS): who calls each operation.

Operations that end what they are called with (delete the account, log out, change the
password) get a member of their own on every call, so the run never locks itself out;
every other operation is called as one long-lived member. The Auth.js adapter's document
is called with the service credential.
"""

from __future__ import annotations

import ast
import os
import threading
from datetime import UTC, datetime
from typing import Any

import requests
import schemathesis

from services.auth.passwords import check_policy
from services.stories import periods
from shared.errors import Invalid
from shared.ids import new_id

# CPython 3.11's ast.parse is not safe in threads ("AST constructor recursion depth mismatch",
# gh-106905, fixed in 3.12), and Hypothesis parses lambdas' sources while schemathesis's workers
# generate cases side by side: one parse at a time.
_ast_parse, _ast_lock = ast.parse, threading.Lock()


def _parse_alone(*args: Any, **kwargs: Any) -> Any:
    with _ast_lock:
        return _ast_parse(*args, **kwargs)


ast.parse = _parse_alone  # type: ignore[assignment]

GATEWAY = os.environ.get("EDGE_GATEWAY_URL", "")
ADAPTER_SECRET = os.environ.get("EDGE_ADAPTER_SECRET", "")
ADAPTER_URL = os.environ.get("EDGE_ADAPTER_URL", "")
PASSWORD = "correct horse battery staple"
# (method, path) of the operations that end the caller's account, sessions or password
DESTRUCTIVE = {("DELETE", "/auth/me"), ("POST", "/auth/logout"), ("POST", "/auth/logout-all"),
               ("POST", "/auth/me/password")}


def _login(email: str, password: str) -> str:
    login = requests.post(f"{GATEWAY}/auth/login", timeout=10,
                          json={"email": email, "password": password})
    login.raise_for_status()
    return str(login.json()["accessToken"])


class Member:
    def __init__(self) -> None:
        self.email, self.password = f"{new_id()}@example.com", PASSWORD
        requests.post(f"{GATEWAY}/auth/register", timeout=10, json={
            "email": self.email, "password": self.password}).raise_for_status()
        self.token = _login(self.email, self.password)


def register_member() -> str:
    """A new member's access token."""
    return Member().token


def _bearer(case: Any, token: str) -> None:
    case.headers = case.headers or {}
    case.headers["Authorization"] = f"Bearer {token}"


def _is_destructive(ctx: Any) -> bool:
    return (ctx.operation.method.upper(), ctx.operation.path) in DESTRUCTIVE


class MembersOfTheirOwn:
    """One member per destructive operation, mended after each call that succeeded: a
    new member once it is deleted, a new login once its tokens are revoked, its new
    password once that is changed (logging out leaves the access token working)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.members: dict[tuple[str, str], Member] = {}

    def member(self, operation: tuple[str, str]) -> Member:
        with self.lock:
            if operation not in self.members:
                self.members[operation] = Member()
            return self.members[operation]

    def succeeded(self, operation: tuple[str, str], body: Any) -> None:
        with self.lock:
            member = self.members.get(operation)
            if member is None:
                return
            if operation == ("DELETE", "/auth/me"):
                del self.members[operation]
            elif operation == ("POST", "/auth/logout-all"):
                member.token = _login(member.email, member.password)
            elif operation == ("POST", "/auth/me/password") and isinstance(body, dict):
                member.password = str(body["newPassword"])


MEMBERS = MembersOfTheirOwn()


def _operation(case: Any) -> tuple[str, str]:
    return case.method.upper(), str(case.operation.path)


@schemathesis.auth(refresh_interval=None).apply_to(_is_destructive)  # type: ignore[arg-type]
class MemberOfItsOwn:
    def get(self, case: Any, ctx: Any) -> str:
        return MEMBERS.member(_operation(case)).token

    def set(self, case: Any, data: str, ctx: Any) -> None:
        _bearer(case, data)


@schemathesis.hook
def after_call(ctx: Any, case: Any, response: Any) -> None:
    if _operation(case) in DESTRUCTIVE and 200 <= response.status_code < 300:
        MEMBERS.succeeded(_operation(case), case.body)


def _is_adapter(ctx: Any) -> bool:
    return str(ctx.operation.path).startswith("/auth/adapter/")


@schemathesis.auth(refresh_interval=None).apply_to(_is_adapter)  # type: ignore[arg-type]
class ServiceCredential:
    def get(self, case: Any, ctx: Any) -> str:
        return ADAPTER_SECRET

    def set(self, case: Any, data: str, ctx: Any) -> None:
        _bearer(case, data)


# No re-login on a 401: this member's token never ends, so a 401 is the answer under test
# (a failed login, a bad token sent on purpose), not a stale token to replace.
@schemathesis.auth(refresh_interval=600, retry_on=[])
class LongLivedMember:
    def get(self, case: Any, ctx: Any) -> str:
        return register_member()

    def set(self, case: Any, data: str, ctx: Any) -> None:
        _bearer(case, data)


# --- rules a JSON Schema cannot state, which the documents describe ------------------------
# Schemathesis checks that every request valid by the schema is accepted
# (positive_data_acceptance). Rules that need more than one field, stored state or a word list
# are described in the documents instead; positive cases that break them are not generated.

NEW_PASSWORDS = {("POST", "/auth/register"): ("password", "email"),
                 ("POST", "/auth/password-reset/confirm"): ("password", None),
                 ("POST", "/auth/me/password"): ("newPassword", None)}


def _when(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def breaks_a_described_rule(method: str, path: str, body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    if (method, path) in NEW_PASSWORDS:
        field, email = NEW_PASSWORDS[(method, path)]
        try:
            check_policy(str(body.get(field, "")), email=body.get(email) if email else None)
        except Invalid:
            return True
    if (method, path) == ("POST", "/stories/generate") and isinstance(body.get("period"), str):
        try:  # the document describes it: a real calendar period that has started
            periods.started(body["period"], now=datetime.now(UTC))
        except periods.InvalidPeriod:
            return True
    if path.startswith("/goals"):
        start, deadline = _when(body.get("startDate")), _when(body.get("deadline"))
        if method == "PATCH" and (start is None) != (deadline is None):
            return True  # compared with the goal's stored date
        if deadline is not None and deadline < (start or datetime.now(UTC)):
            return True
    return False


@schemathesis.hook
def filter_case(ctx: Any, case: Any) -> bool:
    if case.meta is None or case.meta.generation.mode.name.lower() != "positive":
        return True
    return not breaks_a_described_rule(case.method.upper(), case.operation.path, case.body)


_adapter_user: list[str] = []


def adapter_user() -> str:
    """A user the adapter's sessions and accounts can name (made through the adapter)."""
    if not _adapter_user:
        made = requests.post(f"{ADAPTER_URL}/auth/adapter/users", timeout=10,
                             headers={"Authorization": f"Bearer {ADAPTER_SECRET}"},
                             json={"email": f"{new_id()}@example.com"})
        made.raise_for_status()
        _adapter_user.append(str(made.json()["id"]))
    return _adapter_user[0]


@schemathesis.hook
def map_case(ctx: Any, case: Any) -> Any:
    """Values that must name what exists: the current password (its member knows it), the
    user a new adapter session or account belongs to."""
    if case.meta is None or case.meta.generation.mode.name.lower() != "positive" or \
            not isinstance(case.body, dict):
        return case
    if _operation(case) == ("POST", "/auth/me/password"):
        case.body["currentPassword"] = MEMBERS.member(_operation(case)).password
    if _operation(case) in (("POST", "/auth/adapter/sessions"),
                            ("POST", "/auth/adapter/sessions/update"),
                            ("POST", "/auth/adapter/accounts")) and "userId" in case.body:
        case.body["userId"] = adapter_user()
    return case
