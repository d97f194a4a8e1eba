"""A request that meets a database outage answers 503 problem+json with Retry-After (one
warning line, no traceback), and the first request after the database is back succeeds:
the pool drops the dead connections without a pre-ping on every checkout."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

from services.goals.app import create_app
from shared.config import Settings
from shared.db import Database
from shared.http import PROBLEM
from shared.tokens import TokenVerifier
from tests.helpers import TcpProxy, new_user_id


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_an_outage_is_a_503_and_the_next_request_after_it_succeeds(
        database: str, verifier: TokenVerifier,
        auth_header: Callable[[str], dict[str, str]]) -> None:
    url = make_url(Settings.from_env("goals").database_url)
    proxy = TcpProxy(url.port or 5432, url.host or "127.0.0.1")
    db = Database(url.set(port=proxy.port).render_as_string(hide_password=False), "goals")
    api: Any = create_app({"TESTING": True}, db=db, verifier=verifier).test_client()
    headers = auth_header(new_user_id())
    try:
        for _ in range(3):  # several pooled connections, all about to die
            assert api.post("/goals", json={"title": "t", "period": "DAILY"},
                            headers=headers).status_code == 201
        proxy.cut()
        records = Records()
        edge = logging.getLogger("shared.http")
        edge.addHandler(records)
        try:
            down = [api.get("/goals", headers=headers) for _ in range(3)]
        finally:
            edge.removeHandler(records)
        for response in down:
            assert response.status_code == 503, response.get_json()
            assert response.mimetype == PROBLEM
            assert int(response.headers["Retry-After"]) > 0
        # One warning line per failed request, no error and no traceback.
        assert [r.levelname for r in records.records] == ["WARNING"] * 3
        assert not any(r.exc_info for r in records.records)
        proxy.restore()
        back = api.get("/goals", headers=headers)
        assert back.status_code == 200
        assert len(back.get_json()["items"]) == 3
    finally:
        api.application.extensions["service"].tombstones.stop()
        proxy.close()
        db.dispose()
