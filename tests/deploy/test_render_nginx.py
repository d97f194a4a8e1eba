"""The gateway's edge policy as rendered (the e2e tests run the real nginx with it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy import render_nginx


def rendered(**env: str) -> str:
    return render_nginx.render(render_nginx.local_values(Path("/tmp/var"), env), "local")


def test_cors_is_off_by_default() -> None:
    text = rendered()
    assert "CORS is off" in text and "add_header Vary Origin" not in text
    assert "$http_origin;" not in text  # no origin maps to itself


def test_the_allowlist_is_exact_origins() -> None:
    text = rendered(CORS_ALLOWED_ORIGINS="https://app.example, http://localhost:3000,")
    assert '"https://app.example" $http_origin;' in text
    assert '"http://localhost:3000" $http_origin;' in text
    assert "add_header Vary Origin always;" in text
    for bad in ("https://app.example/", "*", "app.example", "https://a.example/path",
                "https://a.example;"):
        with pytest.raises(SystemExit):
            rendered(CORS_ALLOWED_ORIGINS=bad)


def test_rate_limits_cover_login_register_and_mail_routes() -> None:
    text = rendered(GATEWAY_AUTH_RATE="10r/m", GATEWAY_AUTH_BURST="5")
    assert "zone=auth_login:10m rate=10r/m;" in text
    assert "zone=auth_mail:10m rate=6r/m;" in text  # the default
    for route, zone in (("/auth/login", "auth_login"), ("/auth/register", "auth_login"),
                        ("/auth/password-reset/request", "auth_mail"),
                        ("/auth/verify-email/resend", "auth_mail")):
        block = text.split(f"location = {route} {{", 1)[1].split("}", 1)[0]
        assert f"limit_req zone={zone} burst=" in block, route
    assert '"~^/auth/(login|register)([?]|$)" 6;' in text  # 10r/m: one refills in 6 s
    assert "default 10;" in text  # 6r/m: 10 s
    for name, bad in (("GATEWAY_AUTH_RATE", "10/m"), ("GATEWAY_MAIL_BURST", "-1"),
                      ("GATEWAY_MAIL_RATE", "0r/s")):
        with pytest.raises(SystemExit):
            rendered(**{name: bad})
