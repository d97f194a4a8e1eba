"""Issue #3: auth's security properties, each named in docs/security.md with its tests here.

Tests that log in send their own X-Forwarded-For address, so the per-client login limit of
one test never touches another's.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import io
import json
import logging
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import argon2
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from sqlalchemy import select, update

from services.auth import throttle
from services.auth.app import create_app as create_auth_app
from services.auth.models import LoginThrottle, User, UserSession
from services.auth.tokens import KeyDirectory, secret_hash
from services.goals.app import create_app as create_goals_app
from shared import keys, logs
from shared.config import Settings
from shared.db import Database, utcnow
from shared.errors import TooManyRequests
from tests.auth.support import PASSWORD, bearer, client_ip, unique_email
from tests.helpers import ROOT, wait_for

Register = Callable[..., dict[str, Any]]
Login = Callable[..., dict[str, Any]]
LoginLimits = Callable[..., None]
PROBLEM = "application/problem+json"


def log_in(api: Any, email: str, password: str = PASSWORD, *, ip: str) -> Any:
    return api.post("/auth/login", json={"email": email, "password": password},
                    headers={"X-Forwarded-For": ip})


def session_token_of(login_body: dict[str, Any]) -> str:
    return str(login_body["sessionToken"])


def make_oauth_only(db: Database, user_id: str) -> None:
    with db.sessions() as session:
        session.execute(update(User).where(User.id == user_id).values(password=None))
        session.commit()


# -- 1. passwords: argon2id at no less than the ASVS minimum ------------------------------


def test_password_hashes_are_argon2id_at_or_above_the_asvs_minimum(
        register: Register, db: Database) -> None:
    user = register()
    with db.sessions() as session:
        stored = session.scalar(select(User.password).where(User.id == user["id"]))

    assert stored is not None
    params = argon2.extract_parameters(stored)
    # ASVS 4.0 V2.4 / OWASP: argon2id with at least 19 MiB, 2 passes, 1 lane.
    assert params.type is argon2.Type.ID
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2
    assert params.parallelism >= 1
    assert params.salt_len >= 16 and params.hash_len >= 32


# -- 3. a failed login tells nothing: same answer, same time -------------------------------


@pytest.fixture
def three_failures(register: Register, db: Database) -> list[dict[str, str]]:
    """Unknown email, wrong password, a password-less (OAuth) user."""
    known, oauth_only = register(), register()
    make_oauth_only(db, oauth_only["id"])
    return [
        {"email": unique_email("nobody"), "password": PASSWORD},
        {"email": known["email"], "password": PASSWORD + "!"},
        {"email": oauth_only["email"], "password": PASSWORD},
    ]


def test_login_failure_looks_the_same_for_unknown_email_wrong_password_and_oauth_user(
        api: Any, three_failures: list[dict[str, str]]) -> None:
    ip = client_ip()
    responses = [log_in(api, f["email"], f["password"], ip=ip) for f in three_failures]

    assert [r.status_code for r in responses] == [401, 401, 401]
    assert {r.mimetype for r in responses} == {PROBLEM}
    bodies = []
    for response in responses:
        body = dict(response.get_json())
        body.pop("requestId"), body.pop("instance")
        bodies.append(body)
    assert bodies[0] == bodies[1] == bodies[2]
    assert len({r.headers.get("WWW-Authenticate") for r in responses}) == 1
    assert len({r.headers.get("Retry-After") for r in responses}) == 1


def test_login_failure_takes_like_time_for_unknown_email_wrong_password_and_oauth_user(
        api: Any, three_failures: list[dict[str, str]], login_limits: LoginLimits) -> None:
    login_limits(per_account=1000, per_client=1000)
    ip = client_ip()
    samples: list[list[float]] = [[], [], []]
    for round_ in range(6):  # interleaved, so drifting machine load hits every case alike
        for case, attempt in enumerate(three_failures):
            started = time.perf_counter()
            response = log_in(api, attempt["email"], attempt["password"], ip=ip)
            elapsed = time.perf_counter() - started
            assert response.status_code == 401
            if round_:  # the first round warms caches and connections
                samples[case].append(elapsed)

    unknown, wrong_password, oauth_only = (statistics.median(s) for s in samples)
    assert 0.5 < unknown / wrong_password < 2, samples
    assert 0.5 < oauth_only / wrong_password < 2, samples


# -- 4. brute force: limited per account and per client, across instances ----------------


@pytest.fixture
def second_instance(dbs: Callable[[str], Database], settings: Callable[..., Settings],
                    auth_apps: list[Flask]) -> Iterator[Any]:
    """Another auth app with its own connection pool: a second worker or machine."""
    db = Database(settings("auth").database_url, "auth")
    try:
        app = create_auth_app({"TESTING": True}, db=db)
        auth_apps.append(app)  # configured alike (login_limits)
        yield app.test_client()
    finally:
        db.dispose()


def set_window_back(db: Database, key: str, seconds: int) -> None:
    with db.sessions() as session:
        session.execute(update(LoginThrottle).where(LoginThrottle.key == key).values(
            window_started_at=LoginThrottle.window_started_at - timedelta(seconds=seconds)))
        session.commit()


def throttle_row(db: Database, key: str) -> LoginThrottle | None:
    with db.sessions() as session:
        return session.get(LoginThrottle, key)


def test_login_limits_default_to_10_per_account_and_50_per_client_in_15_minutes(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LOGIN_MAX_FAILURES_PER_ACCOUNT", "LOGIN_MAX_FAILURES_PER_CLIENT",
                 "LOGIN_WINDOW_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    assert throttle.Limits.from_env() == throttle.Limits(10, 50, 900)

    monkeypatch.setenv("LOGIN_MAX_FAILURES_PER_ACCOUNT", "3")
    monkeypatch.setenv("LOGIN_MAX_FAILURES_PER_CLIENT", "7")
    monkeypatch.setenv("LOGIN_WINDOW_SECONDS", "60")
    assert throttle.Limits.from_env() == throttle.Limits(3, 7, 60)


def test_failed_logins_per_account_are_limited_across_instances_even_for_the_right_password(
        api: Any, second_instance: Any, register: Register, db: Database,
        login_limits: LoginLimits) -> None:
    login_limits(per_account=4, window_s=900)
    user = register()
    ip = client_ip()
    for instance in (api, second_instance, api, second_instance):  # 4 failures, 2 each
        assert log_in(instance, user["email"], "wrong password!", ip=ip).status_code == 401

    refused = [log_in(instance, user["email"], ip=ip) for instance in (api, second_instance)]

    for response in refused:
        assert response.status_code == 429
        assert response.mimetype == PROBLEM
        assert response.get_json()["status"] == 429
        assert 0 < int(response.headers["Retry-After"]) <= 900
    assert "accessToken" not in refused[0].get_data(as_text=True)
    # From another address too: the account's own limit holds wherever guesses come from.
    assert log_in(api, user["email"], ip=client_ip()).status_code == 429

    set_window_back(db, f"account:{user['email']}", 901)  # the window is over
    assert log_in(second_instance, user["email"], ip=ip).status_code == 200


def test_unknown_emails_are_limited_like_known_ones(
        api: Any, login_limits: LoginLimits) -> None:
    login_limits(per_account=2)
    email, ip = unique_email("nobody"), client_ip()

    statuses = [log_in(api, email, ip=ip).status_code for _ in range(3)]

    assert statuses == [401, 401, 429]


def test_a_successful_login_resets_the_account_count_but_not_the_clients(
        api: Any, register: Register, db: Database, login_limits: LoginLimits) -> None:
    login_limits(per_account=3)
    user, ip = register(), client_ip()
    for _ in range(2):
        assert log_in(api, user["email"], "wrong password!", ip=ip).status_code == 401

    assert log_in(api, user["email"], ip=ip).status_code == 200

    assert throttle_row(db, f"account:{user['email']}") is None
    client = throttle_row(db, f"client:{ip}")
    assert client is not None and client.failures == 2
    for _ in range(3):  # a fresh allowance of 3 for the account
        assert log_in(api, user["email"], "wrong password!", ip=ip).status_code == 401
    assert log_in(api, user["email"], ip=ip).status_code == 429


def test_failed_logins_per_client_address_are_limited_whatever_the_account(
        api: Any, second_instance: Any, register: Register, login_limits: LoginLimits) -> None:
    login_limits(per_client=3)
    ip = client_ip()
    for instance in (api, second_instance, api):
        assert log_in(instance, unique_email("spray"), ip=ip).status_code == 401
    user = register()

    blocked = log_in(second_instance, user["email"], ip=f"{ip}, 192.0.2.1")

    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert log_in(api, user["email"], ip=client_ip()).status_code == 200  # another client


def test_concurrent_attempts_count_exactly_and_cannot_outrun_the_limit(db: Database) -> None:
    limits = throttle.Limits(per_account=7, per_client=1000, window_s=900)
    email, ip = unique_email("parallel"), client_ip()
    start = threading.Barrier(20)
    outcomes: list[str] = []

    def attempt() -> None:
        with db.sessions() as session:
            start.wait()
            try:
                throttle.take_attempt(session, email=email, client=ip, limits=limits)
                session.commit()
                outcomes.append("counted")
            except TooManyRequests:
                session.rollback()
                outcomes.append("refused")

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count("counted") == 7
    account, client = throttle_row(db, f"account:{email}"), throttle_row(db, f"client:{ip}")
    assert account is not None and account.failures == 7
    assert client is not None and client.failures == 7  # refused attempts count nowhere


@pytest.mark.parametrize(("forwarded_for", "peer", "expected"), [
    ("203.0.113.9", "127.0.0.1", "203.0.113.9"),
    ("203.0.113.9, 10.0.0.2", "127.0.0.1", "203.0.113.9"),
    (None, "198.51.100.4", "198.51.100.4"),
    ("not an address", "198.51.100.4", "198.51.100.4"),
    ("2001:db8:1:2:aaaa::1", None, "2001:db8:1:2::/64"),
    ("::ffff:203.0.113.9", None, "203.0.113.9"),
    (None, None, "unknown"),
])
def test_the_client_address_is_the_first_forwarded_hop_else_the_peer(
        forwarded_for: str | None, peer: str | None, expected: str) -> None:
    assert throttle.client_address(forwarded_for, peer) == expected


# -- 6. sessions ---------------------------------------------------------------------------


def test_session_tokens_are_long_random_stored_hashed_and_new_at_every_login(
        api: Any, register: Register, db: Database) -> None:
    user, ip = register(), client_ip()
    first, second = (log_in(api, user["email"], ip=ip).get_json() for _ in range(2))

    tokens = [session_token_of(first), session_token_of(second)]
    assert tokens[0] != tokens[1]
    for token in tokens:
        assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) * 8 >= 128
    with db.sessions() as session:
        stored = set(session.scalars(select(UserSession.session_token)
                                     .where(UserSession.user_id == user["id"])))
    assert stored == {hashlib.sha256(t.encode()).hexdigest() for t in tokens}


def test_logout_deletes_the_session_and_an_expired_session_cannot_refresh(
        api: Any, login: Login, db: Database) -> None:
    ended, expiring = login(), login()
    with db.sessions() as session:
        session.execute(update(UserSession)
                        .where(UserSession.session_token == secret_hash(session_token_of(expiring)))
                        .values(expires=utcnow() - timedelta(seconds=1)))
        session.commit()

    assert api.post("/auth/logout",
                    json={"sessionToken": session_token_of(ended)}).status_code == 204
    with db.sessions() as session:
        assert session.scalar(select(UserSession).where(
            UserSession.session_token == secret_hash(session_token_of(ended)))) is None
    for body in (ended, expiring):
        assert api.post("/auth/refresh",
                        json={"sessionToken": session_token_of(body)}).status_code == 401


def test_logout_all_ends_every_session_of_mine_and_no_one_elses(
        api: Any, register: Register, login: Login) -> None:
    user, ip = register(), client_ip()
    mine = [log_in(api, user["email"], ip=ip).get_json() for _ in range(3)]
    someone_else = login()

    response = api.post("/auth/logout-all", headers=bearer(mine[0]["accessToken"]))

    assert response.status_code == 204
    for body in mine:
        assert api.post("/auth/refresh",
                        json={"sessionToken": session_token_of(body)}).status_code == 401
    assert api.post("/auth/refresh", json={
        "sessionToken": session_token_of(someone_else)}).status_code == 200
    assert api.post("/auth/logout-all").status_code == 401


# -- 7. access tokens: EdDSA with kid, checked claims, rotation, no forgeries --------------


def test_access_tokens_are_eddsa_with_a_kid_and_the_jwks_publishes_public_keys_only(
        api: Any, login: Login) -> None:
    token = login()["accessToken"]
    jwks = api.get("/auth/.well-known/jwks.json").get_json()

    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["kid"] in {key["kid"] for key in jwks["keys"]}
    for key in jwks["keys"]:
        assert set(key) <= {"kty", "crv", "x", "kid", "alg", "use"}  # no private "d"


def _segment(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(user_id: str, **changes: Any) -> dict[str, Any]:
    cfg = Settings.from_env("auth")
    now = int(time.time())
    claims = {"sub": user_id, "iss": cfg.token_issuer, "aud": cfg.token_audience,
              "iat": now, "exp": now + 300, **changes}
    return {k: v for k, v in claims.items() if v is not None}


def forgeries(signing_key: keys.SigningKey, user_id: str) -> dict[str, str]:
    """Tokens an attacker can make from public knowledge (the JWKS) and a key of their own."""
    public = signing_key.public_jwk()
    payload = _segment(_claims(user_id))

    def header(alg: str, **extra: Any) -> str:
        return _segment({"alg": alg, "typ": "JWT", "kid": signing_key.kid, **extra})

    forged = {f"alg {alg}": f"{header(alg)}.{payload}." for alg in ("none", "None", "NONE")}
    secrets_from_public_key = {
        "raw key": base64.urlsafe_b64decode(public["x"] + "=="),
        "jwk x": public["x"].encode(),
        "pem": signing_key.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    }
    for name, secret in secrets_from_public_key.items():
        signing_input = f"{header('HS256')}.{payload}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        forged[f"HS256 with the public key as {name}"] = (
            f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}")
    own = keys.SigningKey(signing_key.kid, Ed25519PrivateKey.generate())
    forged["EdDSA with their own key, embedded as jwk"] = jwt.encode(
        _claims(user_id), own.private_key, algorithm="EdDSA",
        headers={"kid": own.kid, "jwk": own.public_jwk()})
    return forged


PROTECTED = {"auth": "/auth/me", "goals": "/goals", "diary": "/diary/posts/none",
             "stories": "/stories"}


def test_alg_none_and_hs256_forgeries_are_refused_by_every_service(
        client: Callable[[str], Any], signing_key: keys.SigningKey,
        make_token: Callable[..., str]) -> None:
    user_id = "forgery-victim"
    for service, path in PROTECTED.items():
        api = client(service)
        genuine = api.get(path, headers=bearer(make_token(user_id)))
        assert genuine.status_code != 401, service  # the route itself lets a good token in
        for name, token in forgeries(signing_key, user_id).items():
            assert api.get(path, headers=bearer(token)).status_code == 401, (service, name)


@pytest.mark.parametrize("claims", [
    {"exp": int(time.time()) - 60},
    {"iss": "someone-else"},
    {"aud": "another-audience"},
    {"exp": None},
    {"sub": None},
], ids=["expired", "wrong issuer", "wrong audience", "no expiry", "no subject"])
def test_exp_iss_and_aud_are_checked_by_every_service(
        client: Callable[[str], Any], signing_key: keys.SigningKey,
        claims: dict[str, Any]) -> None:
    token = jwt.encode(_claims("claims-check", **claims), signing_key.private_key,
                       algorithm="EdDSA", headers={"kid": signing_key.kid})
    for service, path in PROTECTED.items():
        assert client(service).get(path, headers=bearer(token)).status_code == 401, service


@dataclass
class RotatingAuth:
    """An auth app whose key folder the test rotates, rechecked on every use."""

    api: Any
    folder: Path

    def add_key(self) -> str:
        return keys.generate(self.folder).kid

    def retire(self, kid: str) -> None:
        (self.folder / f"{kid}.pem").unlink()

    def kids(self) -> list[str]:
        return [k["kid"] for k in self.api.get("/auth/.well-known/jwks.json").get_json()["keys"]]


@pytest.fixture
def rotating_auth(api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                  dbs: Callable[[str], Database]) -> RotatingAuth:
    """(`api` first: the session's own auth app must keep the session's key folder.)"""
    folder = tmp_path / "keys"
    first = keys.generate(folder)
    # Older by name, as a key made long before the rotation would be.
    (folder / f"{first.kid}.pem").rename(folder / "20000101T000000-first.pem")
    monkeypatch.setenv("AUTH_KEYS_DIR", str(folder))
    monkeypatch.setenv("AUTH_KEYS_CHECK_SECONDS", "0")
    return RotatingAuth(create_auth_app({"TESTING": True}, db=dbs("auth")).test_client(),
                        folder)


def test_a_new_key_is_published_and_signs_at_once_and_the_old_one_verifies_until_retired(
        rotating_auth: RotatingAuth, register: Register) -> None:
    auth, user, ip = rotating_auth.api, register(), client_ip()
    old_token = log_in(auth, user["email"], ip=ip).get_json()["accessToken"]
    [old_kid] = rotating_auth.kids()
    assert jwt.get_unverified_header(old_token)["kid"] == old_kid

    new_kid = rotating_auth.add_key()  # no restart

    assert rotating_auth.kids() == [old_kid, new_kid]
    new_token = log_in(auth, user["email"], ip=ip).get_json()["accessToken"]
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    assert auth.get("/auth/me", headers=bearer(old_token)).status_code == 200
    assert auth.get("/auth/me", headers=bearer(new_token)).status_code == 200

    rotating_auth.retire(old_kid)

    assert rotating_auth.kids() == [new_kid]
    assert auth.get("/auth/me", headers=bearer(old_token)).status_code == 401
    assert auth.get("/auth/me", headers=bearer(new_token)).status_code == 200


@pytest.fixture
def jwks_server(rotating_auth: RotatingAuth) -> Iterator[tuple[str, list[str]]]:
    """Auth's JWKS over real HTTP, as other services fetch it; records each fetch."""
    fetches: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = rotating_auth.api.get("/auth/.well-known/jwks.json").get_data()
            fetches.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/auth/.well-known/jwks.json", fetches
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_other_services_pick_up_a_rotated_key_from_auths_jwks(
        rotating_auth: RotatingAuth, jwks_server: tuple[str, list[str]],
        register: Register, dbs: Callable[[str], Database],
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, fetches = jwks_server
    monkeypatch.setenv("AUTH_JWKS_URL", url)
    goals = create_goals_app({"TESTING": True}, db=dbs("goals")).test_client()
    auth, user, ip = rotating_auth.api, register(), client_ip()
    old_token = log_in(auth, user["email"], ip=ip).get_json()["accessToken"]
    assert goals.get("/goals", headers=bearer(old_token)).status_code == 200
    [old_kid] = rotating_auth.kids()

    rotating_auth.add_key()
    new_token = log_in(auth, user["email"], ip=ip).get_json()["accessToken"]

    # An unknown kid makes goals refetch the JWKS (at most once a second, against forged kids).
    wait_for(lambda: goals.get("/goals", headers=bearer(new_token)).status_code == 200,
             timeout=5, interval=0.1, message="goals accepts the new key")
    assert len(fetches) >= 2
    assert goals.get("/goals", headers=bearer(old_token)).status_code == 200

    rotating_auth.retire(old_kid)
    fresh_goals = create_goals_app({"TESTING": True}, db=dbs("goals")).test_client()
    assert fresh_goals.get("/goals", headers=bearer(old_token)).status_code == 401
    assert fresh_goals.get("/goals", headers=bearer(new_token)).status_code == 200


def test_a_half_written_or_emptied_key_folder_keeps_the_current_keys(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    kid = keys.generate(folder).kid
    directory = KeyDirectory(folder, check_every_s=0)

    (folder / "29991231T235959-partial.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    assert [k.kid for k in directory()] == [kid]
    (folder / "29991231T235959-partial.pem").unlink()
    (folder / f"{kid}.pem").unlink()
    assert [k.kid for k in directory()] == [kid]


# -- 8. secrets: constant-time comparisons, never in logs or responses --------------------


def test_no_password_token_or_hash_appears_in_logs_or_responses(
        api: Any, db: Database, caplog: pytest.LogCaptureFixture) -> None:
    json_logs = io.StringIO()
    handler = logging.StreamHandler(json_logs)
    handler.setFormatter(logs.JsonFormatter("auth"))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    email, ip, wrong = unique_email("quiet"), client_ip(), "a wrong but long password"
    try:
        logging.getLogger("services.auth").debug("capture check")
        responses = [api.post("/auth/register", json={"email": email, "password": PASSWORD})]
        responses.append(log_in(api, email, wrong, ip=ip))
        first = log_in(api, email, ip=ip)
        second = log_in(api, email, ip=ip)
        responses += [first, second]
        access = [first.get_json()["accessToken"], second.get_json()["accessToken"]]
        sessions = [session_token_of(first.get_json()), session_token_of(second.get_json())]
        responses.append(api.get("/auth/me", headers=bearer(access[0])))
        refreshed = api.post("/auth/refresh", json={"sessionToken": sessions[0]})
        responses.append(refreshed)
        access.append(refreshed.get_json()["accessToken"])
        responses.append(api.post("/auth/logout", json={"sessionToken": sessions[0]}))
        responses.append(api.post("/auth/logout", headers=bearer(access[1])))
        responses.append(api.post("/auth/refresh", json={"sessionToken": sessions[1]}))
        responses.append(api.post("/auth/logout-all", headers=bearer(access[2])))
    finally:
        root.removeHandler(handler)

    with db.sessions() as session:
        password_hash = session.scalar(select(User.password).where(User.email == email))
    assert password_hash
    assert "capture check" in caplog.text and "capture check" in json_logs.getvalue()
    logged = caplog.text + json_logs.getvalue() + "".join(
        json.dumps(record.__dict__, default=str) for record in caplog.records)
    for secret in [PASSWORD, wrong, password_hash, *sessions, *access]:
        assert secret not in logged
    for response in responses:
        text = response.get_data(as_text=True)
        assert password_hash not in text and "$argon2" not in text
        assert PASSWORD not in text and wrong not in text
        assert not any(secret_hash(token) in text for token in sessions)


SECRET_NAMES = ("password", "secret", "token", "credential", "digest")


def _python_compared_secrets(source: str) -> list[str]:
    """`==`/`!=` with a secret-named plain variable or attribute on either side; a model
    column (`Session.session_token == ...`) is SQL for the database, not a Python compare."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        if not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            continue
        for operand in (node.left, *node.comparators):
            if isinstance(operand, ast.Attribute) and isinstance(operand.value, ast.Name) \
                    and operand.value.id[:1].isupper():
                break  # a SQLAlchemy expression
            name = operand.id if isinstance(operand, ast.Name) else (
                operand.attr if isinstance(operand, ast.Attribute) else "")
            if any(word in name.lower() for word in SECRET_NAMES):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
                break
    return found


def test_secrets_are_compared_in_constant_time_where_python_compares() -> None:
    offenders = {
        str(path.relative_to(ROOT)): found
        for folder in ("services/auth", "shared")
        for path in sorted((ROOT / folder).rglob("*.py"))  # the feature packages too
        if (found := _python_compared_secrets(path.read_text()))
    }

    assert offenders == {}, "compare secrets with hmac.compare_digest"
    assert _python_compared_secrets("ok = token == expected")  # the check does catch one


def test_guessing_the_current_password_with_a_stolen_token_is_limited_like_login(
        api: Any, login_limits: LoginLimits) -> None:
    login_limits(per_account=3)
    email = unique_email("guess")
    assert api.post("/auth/register", json={"email": email, "password": PASSWORD}
                    ).status_code == 201
    ip = client_ip()
    token = log_in(api, email, ip=ip).get_json()["accessToken"]
    new = "another long passphrase 7"
    statuses = [api.post("/auth/me/password", headers={**bearer(token), "X-Forwarded-For": ip},
                         json={"currentPassword": f"wrong guess {i}", "newPassword": new}
                         ).status_code for i in range(4)]
    assert statuses == [422, 422, 422, 429]
    right = api.post("/auth/me/password", headers={**bearer(token), "X-Forwarded-For": ip},
                     json={"currentPassword": PASSWORD, "newPassword": new})
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0


def test_stale_login_counters_are_forgotten(db: Database) -> None:
    stale, live = f"account:{unique_email('stale')}", f"account:{unique_email('live')}"
    with db.sessions.begin() as session:
        session.add_all([
            LoginThrottle(key=stale, failures=3, window_started_at=utcnow() - timedelta(days=2)),
            LoginThrottle(key=live, failures=3, window_started_at=utcnow())])
    with db.sessions.begin() as session:
        assert throttle.forget_stale(session) >= 1
    with db.sessions() as session:
        keys_left = set(session.scalars(select(LoginThrottle.key).where(
            LoginThrottle.key.in_([stale, live]))))
    assert keys_left == {live}
