"""The whole system as a front end sees it: gunicorn web processes and workers for every
service behind the real nginx gateway, driven over HTTP only."""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from deploy.local import LocalSystem
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
        self.env = dict(os.environ)
        for svc, port in self.ports.items():
            self.env[f"{svc.upper()}_PORT"] = str(port)
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


def raw_request(system: System, raw: bytes) -> tuple[int, str, bytes]:
    """Bytes no HTTP client would send; returns status, content type and body."""
    with socket.create_connection(("127.0.0.1", system.gateway_port), timeout=5) as sock:
        sock.sendall(raw)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    content_type = next((line.split(":", 1)[1].strip() for line in lines[1:]
                         if line.lower().startswith("content-type:")), "")
    return int(lines[0].split()[1]), content_type, body


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
    got, content_type, body = raw_request(system, raw + headers + b"\r\n")
    assert (got, content_type) == (status, "application/problem+json"), body[:200]
    assert json.loads(body)["status"] == status


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
