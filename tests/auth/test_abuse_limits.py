"""The edge holds against any input: abuse limits (services/auth/rate_limits.py).

Mails with links (password reset, email verification) are limited per email address and
per client address, answered alike past the limit; registrations are limited per client
address, 429 past it. Each test sends its own client address (X-Forwarded-For) and sets
its own limits (the run lifts them: tests/conftest.py); the window's end is reached by
moving the counters' window start back by a window, as the database clock moving on would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from services.auth import rate_limits, throttle
from services.auth.models import OutgoingMail, RateLimit, User
from services.auth.rate_limits import AbuseLimits
from services.auth.recovery import usecases as recovery
from services.auth.recovery.api import RESET_REQUESTED, VERIFICATION_RESENT
from shared.db import Database, UnitOfWork
from tests.auth.support import PASSWORD, bearer, client_ip, unique_email
from tests.helpers import at_once, wait_for

Limits = Callable[..., AbuseLimits]
PROBLEM = "application/problem+json"
RESET = "/auth/password-reset/request"


def users_in(db: Database, n: int) -> list[str]:
    """`n` accounts inserted directly (no password hashing, no registration counted)."""
    emails = [unique_email("limited") for _ in range(n)]
    with db.sessions() as session:
        session.execute(insert(User), [{"email": email} for email in emails])
        session.commit()
    return emails


def mails_to(db: Database, address: str) -> int:
    with db.sessions() as session:
        return len(session.scalars(select(OutgoingMail.id).where(
            OutgoingMail.to_address == address)).all())


def ask_reset(api: Any, email: str, ip: str) -> Any:
    return api.post(RESET, json={"email": email}, headers={"X-Forwarded-For": ip})


def register_from(api: Any, ip: str, email: str | None = None) -> Any:
    return api.post("/auth/register", json={"email": email or unique_email(),
                                            "password": PASSWORD},
                    headers={"X-Forwarded-For": ip})


def answer(response: Any) -> tuple[int, str, Any, list[tuple[str, str]]]:
    """What a client sees of a response (status, headers, body), less its request id."""
    headers = sorted((k, v) for k, v in response.headers.items() if k.lower() != "x-request-id")
    return response.status_code, response.mimetype, response.get_json(), headers


def age_windows(db: Database, *keys: str, by: timedelta) -> None:
    """The counters of `keys`, as if their window had started `by` earlier."""
    with db.sessions() as session:
        session.execute(update(RateLimit).where(RateLimit.key.in_(keys)).values(
            window_started_at=RateLimit.window_started_at - by))
        session.commit()


# -- defaults and configuration --------------------------------------------------------------


def test_abuse_limits_default_to_3_and_20_mails_and_10_registrations_an_hour(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MAIL_MAX_PER_ADDRESS", "MAIL_MAX_PER_CLIENT", "REGISTER_MAX_PER_CLIENT",
                 "ABUSE_WINDOW_SECONDS", "MAIL_COOLDOWN_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    assert AbuseLimits.from_env() == AbuseLimits(
        mail_per_address=3, mail_per_client=20, register_per_client=10, window_s=3600,
        mail_cooldown_s=60)

    monkeypatch.setenv("MAIL_MAX_PER_ADDRESS", "2")
    monkeypatch.setenv("MAIL_MAX_PER_CLIENT", "5")
    monkeypatch.setenv("REGISTER_MAX_PER_CLIENT", "4")
    monkeypatch.setenv("ABUSE_WINDOW_SECONDS", "60")
    monkeypatch.setenv("MAIL_COOLDOWN_SECONDS", "0")
    assert AbuseLimits.from_env() == AbuseLimits(2, 5, 4, 60, 0)


# -- password-reset mails ----------------------------------------------------------------------


def test_the_fourth_reset_request_for_an_address_in_an_hour_queues_no_mail_and_looks_alike(
        api: Any, db: Database, abuse_limits: Limits) -> None:
    abuse_limits(mail_cooldown_s=0)  # the defaults: 3 per address, 20 per client, an hour
    [email] = users_in(db, 1)
    ip = client_ip()

    responses = [ask_reset(api, email, ip) for _ in range(4)]

    assert mails_to(db, email) == 3
    assert len({repr(answer(r)) for r in responses}) == 1
    assert responses[3].status_code == 202 and responses[3].get_json() == RESET_REQUESTED
    # From another client too: the address's limit is the address's.
    assert answer(ask_reset(api, email, client_ip())) == answer(responses[0])
    assert mails_to(db, email) == 3


def test_unknown_emails_count_like_known_ones_and_answer_alike(
        api: Any, db: Database, abuse_limits: Limits) -> None:
    abuse_limits(mail_per_address=1, mail_cooldown_s=0)
    [known] = users_in(db, 1)
    unknown, ip = unique_email("nobody"), client_ip()

    responses = [ask_reset(api, email, ip) for email in (known, unknown, known, unknown)]

    assert len({repr(answer(r)) for r in responses}) == 1
    assert mails_to(db, known) == 1 and mails_to(db, unknown) == 0
    with db.sessions() as session:
        counted = session.scalar(select(RateLimit.n).where(
            RateLimit.kind == rate_limits.MAIL_ADDRESS, RateLimit.key == unknown))
    assert counted == 1


def test_the_21st_reset_request_from_one_client_for_other_emails_queues_nothing(
        api: Any, db: Database, abuse_limits: Limits) -> None:
    abuse_limits()  # 20 per client an hour
    emails, ip = users_in(db, 22), client_ip()

    responses = [ask_reset(api, email, ip) for email in emails[:21]]

    assert [mails_to(db, email) for email in emails[:21]] == [1] * 20 + [0]
    assert len({repr(answer(r)) for r in responses}) == 1
    # The refused request counted nowhere: the 21st address may still get its mail from
    # elsewhere, and another client is not held back.
    assert answer(ask_reset(api, emails[20], client_ip())) == answer(responses[0])
    assert mails_to(db, emails[20]) == 1
    with db.sessions() as session:
        counted = session.scalar(select(RateLimit.n).where(
            RateLimit.kind == rate_limits.MAIL_ADDRESS, RateLimit.key == emails[20]))
    assert counted == 1


def test_the_mail_window_ends_after_an_hour(
        api: Any, db: Database, abuse_limits: Limits) -> None:
    abuse_limits(mail_cooldown_s=0)
    [email] = users_in(db, 1)
    ip = client_ip()
    for _ in range(4):
        assert ask_reset(api, email, ip).status_code == 202
    assert mails_to(db, email) == 3

    age_windows(db, email, ip, by=timedelta(minutes=59))
    ask_reset(api, email, ip)
    assert mails_to(db, email) == 3  # a minute to go
    age_windows(db, email, ip, by=timedelta(minutes=1))
    ask_reset(api, email, ip)
    assert mails_to(db, email) == 4  # a new window


def test_a_small_window_from_the_settings_ends_by_itself(
        api: Any, db: Database, abuse_limits: Limits) -> None:
    abuse_limits(mail_per_address=1, window_s=1, mail_cooldown_s=0)
    [email] = users_in(db, 1)
    ip = client_ip()
    ask_reset(api, email, ip), ask_reset(api, email, ip)
    assert mails_to(db, email) == 1

    def asked_after_the_window() -> bool:  # refused asks inside the window queue nothing
        ask_reset(api, email, ip)
        return mails_to(db, email) > 1

    wait_for(asked_after_the_window, timeout=5, interval=0.1, message="the window to end")
    assert mails_to(db, email) == 2


def test_sixteen_concurrent_reset_requests_for_one_address_queue_exactly_three_mails(
        db: Database, wide_db: Database) -> None:
    limits = AbuseLimits(mail_per_address=3, mail_per_client=1000, mail_cooldown_s=0)
    [email] = users_in(db, 1)
    ips = [client_ip() for _ in range(16)]

    def run(n: int) -> None:
        recovery.request_password_reset(  # the use case opens its unit of work
            UnitOfWork(wide_db, source="/tests"), email=email,
            public_base_url="http://test", client=ips[n], limits=limits)

    errors = at_once(16, run)
    assert not errors, errors
    assert mails_to(db, email) == 3


def test_sixteen_concurrent_requests_for_unknown_addresses_cannot_outrun_the_client_limit(
        wide_db: Database) -> None:
    limits = AbuseLimits(mail_per_client=5)
    ip = client_ip()
    granted: list[bool] = []

    def run(_n: int) -> None:
        with wide_db.sessions() as session:
            granted.append(rate_limits.take_mail(session, email=unique_email("nobody"),
                                                 client=ip, limits=limits))
            session.commit()

    assert at_once(16, run) == []
    assert granted.count(True) == 5 and len(granted) == 16


# -- verification mails ------------------------------------------------------------------------


def test_verification_mails_share_the_address_limit_and_answer_alike_past_it(
        api: Any, db: Database, abuse_limits: Limits) -> None:
    abuse_limits(mail_per_address=2, mail_cooldown_s=0)
    ip = client_ip()
    user = register_from(api, ip).get_json()  # its verification mail counts nowhere
    login = api.post("/auth/login", json={"email": user["email"], "password": PASSWORD},
                     headers={"X-Forwarded-For": ip}).get_json()
    headers = {**bearer(login["accessToken"]), "X-Forwarded-For": ip}

    resent = [api.post("/auth/verify-email/resend", headers=headers) for _ in range(2)]
    after = api.post("/auth/verify-email/resend", headers=headers)
    reset = ask_reset(api, user["email"], ip)

    assert mails_to(db, user["email"]) == 3  # registration's, then two resent
    assert answer(after) == answer(resent[0]) == answer(resent[1])
    assert after.status_code == 202 and after.get_json() == VERIFICATION_RESENT
    assert reset.status_code == 202 and reset.get_json() == RESET_REQUESTED  # none queued


# -- registrations -----------------------------------------------------------------------------


def test_the_11th_registration_from_one_address_is_429_with_retry_after(
        api: Any, abuse_limits: Limits) -> None:
    abuse_limits()  # 10 per client an hour
    ip = client_ip()

    for _ in range(10):
        assert register_from(api, ip).status_code == 201
    refused = register_from(api, ip)

    assert refused.status_code == 429 and refused.mimetype == PROBLEM
    assert 3500 < int(refused.headers["Retry-After"]) <= 3600
    assert refused.get_json()["status"] == 429
    assert register_from(api, client_ip()).status_code == 201  # another client


def test_failed_registrations_count_too(api: Any, abuse_limits: Limits) -> None:
    """The slot is committed before the registration goes on (as login's attempt is)."""
    abuse_limits(register_per_client=3)
    ip, email = client_ip(), unique_email()

    assert register_from(api, ip, email).status_code == 201
    assert [register_from(api, ip, email).status_code for _ in range(2)] == [409, 409]
    assert register_from(api, ip).status_code == 429


def test_the_registration_window_ends_after_an_hour(
        api: Any, db: Database, abuse_limits: Limits) -> None:
    abuse_limits(register_per_client=1)
    ip = client_ip()
    assert register_from(api, ip).status_code == 201
    assert register_from(api, ip).status_code == 429

    age_windows(db, ip, by=timedelta(hours=1))

    assert register_from(api, ip).status_code == 201


# -- housekeeping ------------------------------------------------------------------------------


def test_stale_counters_are_pruned_with_the_login_counters(db: Database) -> None:
    old, fresh = client_ip(), client_ip()
    with db.sessions() as session:
        for ip in (old, fresh):
            rate_limits.take_registration(session, client=ip, limits=AbuseLimits())
        session.commit()
    age_windows(db, old, by=timedelta(days=2))

    def left() -> set[str]:
        with db.sessions() as session:
            return set(session.scalars(select(RateLimit.key).where(
                RateLimit.key.in_([old, fresh]))))

    stop = threading.Event()  # the worker's pruning loop, which prunes at start
    loop = threading.Thread(target=throttle.forget_stale_attempts, args=(None, db, stop))
    loop.start()
    try:
        wait_for(lambda: left() == {fresh}, timeout=10)
    finally:
        stop.set()
        loop.join(10)
    assert left() == {fresh}
