"""The whole system as a front end sees it: gunicorn web processes and workers for every
service behind the real nginx gateway, driven over HTTP only."""

from __future__ import annotations

import copy
import io
import json
import os
import re
import shutil
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from deploy.local import LocalSystem, children, http_status
from shared.config import SERVICES
from shared.ids import new_id
from tests.auth.smtp import MailCatcher
from tests.conftest import migrated_services
from tests.helpers import wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = pytest.mark.skipif(
    set(migrated_services()) != set(SERVICES), reason="every service must be built")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class System:
    """The system as `make run` starts it (deploy/local.py), on free ports, under a var/ of
    its own: the runner's pid files, logs and rendered gateway config are the ones tested."""

    def __init__(self, root: Path) -> None:
        self.ports = {svc: free_port() for svc in SERVICES}
        self.gateway_port = free_port()
        self.env = {k: v for k, v in os.environ.items()
                    if k != "CORS_ALLOWED_ORIGINS" and not k.startswith("GATEWAY_")}
        self.worker_ports = {svc: free_port() for svc in SERVICES}
        for svc, port in self.ports.items():
            self.env[f"{svc.upper()}_PORT"] = str(port)
            self.env[f"{svc.upper()}_WORKER_PORT"] = str(self.worker_ports[svc])
        self.env.update(GATEWAY_PORT=str(self.gateway_port), NGINX=NGINX,
                        AUTH_JWKS_URL=f"http://127.0.0.1:{self.ports['auth']}"
                                      "/auth/.well-known/jwks.json",
                        WEB_CONCURRENCY="2", READY_TIMEOUT="60", STOP_TIMEOUT="30")
        self.var = root / "var"
        self.url = f"http://127.0.0.1:{self.gateway_port}"
        self.runner: LocalSystem | None = None

    def start(self) -> None:
        self.runner = LocalSystem(environ=self.env, var=self.var)
        self.runner.start_all()

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop_all([])


@pytest.fixture(scope="module")
def smtp() -> Iterator[MailCatcher]:
    catcher = MailCatcher().start()
    yield catcher
    catcher.stop()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory, signing_key: Any,
           smtp: MailCatcher, database: str) -> Iterator[System]:
    if not Path(NGINX).exists():
        pytest.fail("nginx is not installed: `make install` installs it")
    s = System(tmp_path_factory.mktemp("system"))
    s.env.update(SMTP_HOST=smtp.host, SMTP_PORT=str(smtp.port))
    try:
        s.start()
        yield s
    finally:
        s.stop()


def call(system: System, method: str, path: str, token: str | None = None,
         **kwargs: Any) -> requests.Response:
    headers = kwargs.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, system.url + path, headers=headers, timeout=10, **kwargs)


def test_a_member_registers_sets_goals_earns_points_and_leaves(system: System) -> None:
    email = f"{new_id()}@example.com"
    password = "correct horse battery staple"
    registered = call(system, "POST", "/auth/register",
                      json={"email": email, "password": password, "name": "Grace"})
    assert registered.status_code == 201, registered.text
    login = call(system, "POST", "/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    token = login.json()["accessToken"]

    goal = call(system, "POST", "/goals", token, json={"title": "Give a talk",
                                                       "period": "MONTHLY"})
    assert goal.status_code == 201, goal.text
    goal_id = goal.json()["id"]
    listed = call(system, "GET", "/goals?status=ACTIVE&period=MONTHLY", token).json()
    assert [g["id"] for g in listed["items"]] == [goal_id]
    assert call(system, "POST", f"/goals/{goal_id}/complete", token).status_code == 200

    def score() -> int:
        return int(call(system, "GET", "/auth/me", token).json()["achievementScore"])

    wait_for(lambda: score() == 20, message="monthly award through the gateway")
    call(system, "POST", f"/goals/{goal_id}/reopen", token)
    wait_for(lambda: score() == 0, message="award withdrawn")

    assert call(system, "DELETE", "/auth/me", token).status_code == 204
    wait_for(lambda: call(system, "GET", "/goals", token).status_code == 401,
             message="goals refuses the deleted user's token")


def test_the_gateway_answers_problems_and_keeps_internals_private(system: System) -> None:
    missing = call(system, "GET", "/nowhere")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"].startswith("application/problem+json")
    assert call(system, "GET", "/metrics").status_code == 404
    traced = call(system, "GET", "/goals", headers={"X-Request-ID": "trace-me-1"})
    assert traced.status_code == 401
    assert traced.headers["X-Request-ID"] == "trace-me-1"
    assert traced.json()["requestId"] == "trace-me-1"
    jwks = call(system, "GET", "/auth/.well-known/jwks.json").json()
    assert jwks["keys"] and all("d" not in key for key in jwks["keys"])
    for svc in SERVICES:
        assert call(system, "GET", f"/{svc}/openapi.json").status_code == 200
        assert call(system, "GET", f"/{svc}/healthz").json()["status"] == "ok"


def raw_request(system: System, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Bytes no HTTP client would send; returns status, headers (lower-case names), body."""
    with socket.create_connection(("127.0.0.1", system.gateway_port), timeout=5) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    headers = {name.strip().lower(): value.strip()
               for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("raw,status", [
    (b"GET /goals/%00 HTTP/1.1\r\n", 400),
    (b"GET /goals/..%2F..%2Fetc%2Fpasswd HTTP/1.1\r\n", 400),
    (b"FOO BAR\r\n", 400),
    (b"TRACE /goals HTTP/1.1\r\n", 405),
    (b"GET /goals?cursor=" + b"a" * 5000 + b" HTTP/1.1\r\n", 414),
    (b"GET /goals HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n", 400),
], ids=["nul", "traversal", "garbage-line", "trace", "long-uri", "big-header"])
def test_requests_the_gateway_refuses_get_problem_json(system: System, raw: bytes,
                                                       status: int) -> None:
    headers = b"" if raw.startswith(b"FOO") else b"Host: gateway\r\nConnection: close\r\n"
    got, answer, body = raw_request(system, raw + headers + b"\r\n")
    assert (got, answer.get("content-type")) == (status, "application/problem+json"), body[:200]
    assert json.loads(body)["status"] == status
    assert_edge_headers(answer)


def test_account_flows_through_the_gateway_with_real_mail(system: System,
                                                          smtp: MailCatcher) -> None:
    email = f"{new_id()}@example.com"
    password, new_password = "correct horse battery staple", "a brand new passphrase 99"
    assert call(system, "POST", "/auth/register",
                json={"email": email, "password": password}).status_code == 201
    verify = smtp.wait_for_link(email, "verify-email")
    assert call(system, "POST", "/auth/verify-email", json={"token": verify}).status_code == 204
    first = call(system, "POST", "/auth/login", json={"email": email, "password": password})
    me = call(system, "GET", "/auth/me", first.json()["accessToken"]).json()
    assert me["verified"] is True and me["emailVerified"]
    refreshed = call(system, "POST", "/auth/refresh",
                     json={"sessionToken": first.json()["sessionToken"]})
    assert refreshed.status_code == 200 and refreshed.json()["accessToken"]

    # Forgotten password: the same answer for a stranger, a link for the member.
    stranger = call(system, "POST", "/auth/password-reset/request",
                    json={"email": f"{new_id()}@example.com"})
    member = call(system, "POST", "/auth/password-reset/request", json={"email": email})
    assert stranger.status_code == member.status_code == 202
    assert stranger.json() == member.json()
    reset = smtp.wait_for_link(email, "reset-password")
    assert call(system, "POST", "/auth/password-reset/confirm",
                json={"token": reset, "password": new_password}).status_code == 204
    assert call(system, "POST", "/auth/password-reset/confirm",
                json={"token": reset, "password": new_password}).status_code == 400
    assert call(system, "POST", "/auth/refresh", json={
        "sessionToken": first.json()["sessionToken"]}).status_code == 401  # sessions ended
    assert call(system, "POST", "/auth/login",
                json={"email": email, "password": password}).status_code == 401
    again = call(system, "POST", "/auth/login", json={"email": email, "password": new_password})
    assert again.status_code == 200
    assert call(system, "POST", "/auth/logout-all", again.json()["accessToken"]
                ).status_code == 204
    assert call(system, "POST", "/auth/refresh", json={
        "sessionToken": again.json()["sessionToken"]}).status_code == 401
    # The Auth.js adapter is for the internal network only.
    assert call(system, "GET", "/auth/adapter/users/x",
                headers={"Authorization": "Bearer anything"}).status_code == 404


# --- the edge: security headers, caching, docs without a CDN, CORS, rate limits --------------

ALLOWED_ORIGIN = "https://app.example"


def assert_edge_headers(headers: Any, cors: str = "off") -> None:
    """The gateway's security headers; no CORS header unless `cors` is "allowed", and with
    CORS "off" no Vary: Origin either (with an allowlist every answer varies by Origin)."""
    names = {name.lower(): value for name, value in headers.items()}
    assert names.get("x-content-type-options") == "nosniff", names
    assert names.get("referrer-policy") == "no-referrer", names
    csp = names.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp and "unsafe-eval" not in csp, csp
    assert "script-src 'self'" in csp and "http" not in csp, csp
    if cors != "allowed":
        assert not [n for n in names if n.startswith("access-control-")], names
    if cors == "off":
        assert "origin" not in names.get("vary", "").lower(), names
    else:
        assert "Origin" in names.get("vary", ""), names


def test_every_answer_carries_the_security_headers(system: System) -> None:
    answers = {
        "proxied 200": call(system, "GET", "/goals/healthz"),
        "service 401": call(system, "GET", "/goals"),
        "service 404": call(system, "GET", f"/auth/users/{new_id()}"),
        "gateway 404": call(system, "GET", "/nowhere"),
        "adapter 404": call(system, "GET", "/auth/adapter/users/x"),
        "with an Origin, CORS off": call(system, "GET", "/goals/healthz",
                                         headers={"Origin": ALLOWED_ORIGIN}),
    }
    assert [a.status_code for a in answers.values()] == [200, 401, 404, 404, 404, 200]
    for what, answer in answers.items():
        assert "X-Request-ID" in answer.headers, what
        assert_edge_headers(answer.headers)
    preflight = call(system, "OPTIONS", "/goals", headers={
        "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code != 204
    assert_edge_headers(preflight.headers)


def test_tokens_and_personal_data_are_never_cached(system: System) -> None:
    email, password = f"{new_id()}@example.com", "correct horse battery staple"
    registered = call(system, "POST", "/auth/register",
                      json={"email": email, "password": password, "name": "Ada"})
    login = call(system, "POST", "/auth/login", json={"email": email, "password": password})
    token = login.json()["accessToken"]
    answers = [
        registered, login,
        call(system, "POST", "/auth/refresh", json={"sessionToken": login.json()["sessionToken"]}),
        call(system, "GET", "/auth/me", token),
        call(system, "PATCH", "/auth/me", token, json={"name": "Ada L."}),
        call(system, "GET", f"/auth/users/{registered.json()['id']}"),
        call(system, "GET", "/goals", token),
        call(system, "DELETE", "/auth/me", token),
    ]
    assert [a.status_code for a in answers] == [201, 200, 200, 200, 200, 200, 200, 204]
    assert [a.headers.get("Cache-Control") for a in answers] == ["no-store"] * len(answers)
    jwks = call(system, "GET", "/auth/.well-known/jwks.json")
    assert jwks.headers["Cache-Control"].startswith("public, max-age=")


@pytest.mark.parametrize("svc", SERVICES)
def test_the_docs_load_from_the_service_alone(system: System, svc: str) -> None:
    page = call(system, "GET", f"/{svc}/docs")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert_edge_headers(page.headers)
    urls = re.findall(r"""(?:src|href)=["']([^"']*)["']""", page.text)
    assert len(urls) == 3 and all(url.startswith(f"/{svc}/docs/assets/") for url in urls), urls
    assert not re.search(r"<script(?![^>]*\ssrc=)", page.text), "an inline script"
    assert "//" not in re.sub(r"<!--.*?-->", "", page.text, flags=re.S)  # no other host
    for url in urls:
        asset = call(system, "GET", url)
        assert asset.status_code == 200 and len(asset.content) > 100, url
        assert asset.headers["Content-Type"].startswith(("text/css", "text/javascript")), url
        assert_edge_headers(asset.headers)
    spec = page.text.split('data-spec-url="', 1)[1].split('"', 1)[0]
    assert call(system, "GET", spec).json()["openapi"].startswith("3.")
    assert call(system, "GET", f"/{svc}/docs/assets/index.html").status_code == 404


@pytest.fixture(scope="module")
def edge(system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """A second gateway in front of the same services, rendered by the runner with a CORS
    allowlist and a login limit low enough to reach: 1 a minute, burst 2."""
    port = free_port()
    env = dict(system.env, GATEWAY_PORT=str(port), GATEWAY_AUTH_RATE="1r/m",
               GATEWAY_AUTH_BURST="2",
               CORS_ALLOWED_ORIGINS=f"{ALLOWED_ORIGIN}, http://localhost:3000")
    gateway = LocalSystem(environ=env, var=tmp_path_factory.mktemp("edge") / "var")
    gateway.start_gateway()
    view = copy.copy(system)
    view.gateway_port, view.url = port, f"http://127.0.0.1:{port}"
    try:
        yield view
    finally:
        gateway.stop(["nginx"])


def test_cors_answers_only_the_allowed_origins(edge: System) -> None:
    asks = {"Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"}
    preflight = call(edge, "OPTIONS", "/goals", headers={"Origin": ALLOWED_ORIGIN, **asks})
    assert preflight.status_code == 204, preflight.text
    assert_edge_headers(preflight.headers, cors="allowed")
    assert preflight.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    allowed_headers = preflight.headers["Access-Control-Allow-Headers"]
    assert {"Authorization", "Content-Type", "X-Request-ID"} <= {
        h.strip() for h in allowed_headers.split(",")}
    assert int(preflight.headers["Access-Control-Max-Age"]) > 0
    assert "Access-Control-Allow-Credentials" not in preflight.headers

    actual = call(edge, "GET", "/goals", headers={"Origin": "http://localhost:3000"})
    assert actual.status_code == 401  # the service's answer, readable by that origin
    assert actual.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert_edge_headers(actual.headers, cors="allowed")
    assert "Access-Control-Allow-Methods" not in actual.headers

    for origin in ("https://evil.example", "https://app.example.evil.example",
                   "http://app.example", "null"):
        refused = call(edge, "OPTIONS", "/goals", headers={"Origin": origin, **asks})
        assert refused.status_code != 204, origin
        assert_edge_headers(refused.headers, cors="refused")
        assert "Access-Control-Allow-Origin" not in call(
            edge, "GET", "/goals/healthz", headers={"Origin": origin}).headers


def test_a_burst_of_logins_from_one_address_is_refused_with_retry_after(
        system: System, edge: System) -> None:
    def attempt(through: System) -> requests.Response:
        return call(through, "POST", "/auth/login", json={
            "email": f"{new_id()}@example.com", "password": "not the right password"})

    assert [attempt(edge).status_code for _ in range(3)] == [401] * 3
    limited = attempt(edge)
    assert limited.status_code == 429
    assert limited.headers["Content-Type"] == "application/problem+json"
    assert limited.json()["status"] == 429
    assert limited.headers["Retry-After"] == "60"
    assert_edge_headers(limited.headers, cors="refused")  # no Origin sent
    # The limit is the gateway's: the default one (generous) still lets this address log in.
    assert attempt(system).status_code == 401
    assert "Retry-After" not in attempt(system).headers


def test_a_worker_that_dies_is_back_within_seconds_and_status_shows_its_health(
        system: System) -> None:
    assert system.runner is not None
    out = io.StringIO()
    assert LocalSystem(environ=system.env, var=system.var, out=out).status() == 0, out.getvalue()
    shown = {line.split()[0]: line for line in out.getvalue().splitlines()}
    for svc in SERVICES:
        health = f"http://127.0.0.1:{system.worker_ports[svc]}"
        assert f"{health}  readyz 200" in shown[f"{svc}-worker"]
        assert "outbox pending" in shown[f"{svc}-worker"]
    assert "mail pending" in shown["auth-worker"]

    supervisor = system.runner.live_pid("goals-worker")
    assert supervisor is not None
    (worker,) = children(supervisor)
    os.kill(worker, signal.SIGKILL)
    replaced = wait_for(lambda: (children(supervisor) - {worker}) or None, timeout=5,
                        message="the goals worker started again within 5 s")
    assert system.runner.live_pid("goals-worker") == supervisor
    wait_for(lambda: http_status(f"http://127.0.0.1:{system.worker_ports['goals']}/readyz")
             == "200", timeout=30, message=f"the new goals worker {replaced} ready")
