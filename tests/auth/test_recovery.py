"""Email verification, password reset and change, with mail sent over real SMTP.

Mail goes the way it goes in production: the request queues it, the worker's delivery loop
(`MailDelivery.run`, here in a thread of the test process) sends it to an aiosmtpd server, and
the test reads the link out of the received mail. One test runs the real worker process.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from services.auth import passwords
from services.auth.mail import MailDelivery, MailSettings, retry_delay
from services.auth.models import OutgoingMail, PasswordReset, UserSession, VerificationToken
from services.auth.recovery import usecases as recovery
from services.auth.recovery.api import RESET_REQUESTED, VERIFICATION_RESENT
from services.auth.tokens import secret_hash
from shared.db import Database, UnitOfWork
from tests.auth.smtp import MailCatcher, link_in, smtp_fixture  # noqa: F401 - `smtp`
from tests.auth.support import PASSWORD, bearer, load_user, unique_email
from tests.helpers import PYTHON, ServiceProcess, at_once, wait_for

NEW_PASSWORD = "another quite long passphrase"
Register = Callable[..., dict[str, Any]]


@pytest.fixture
def mail_worker(smtp: MailCatcher, db: Database) -> Iterator[threading.Event]:
    """The worker's delivery loop, pointed at the test SMTP server, retrying fast."""
    stop = threading.Event()
    cfg = MailSettings(smtp_host=smtp.host, smtp_port=smtp.port, retry_base_s=0.1,
                       retry_max_s=0.5)
    thread = threading.Thread(target=MailDelivery(cfg, db).run, args=(stop,))
    thread.start()
    yield stop
    stop.set()
    thread.join(10)
    assert not thread.is_alive()


def log_in(api: Any, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = api.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


def refreshes(api: Any, login: dict[str, Any]) -> bool:
    response = api.post("/auth/refresh", json={"sessionToken": login["sessionToken"]})
    assert response.status_code in (200, 401)
    return bool(response.status_code == 200)


def queued_for(db: Database, address: str) -> list[OutgoingMail]:
    with db.sessions() as session:
        return list(session.scalars(select(OutgoingMail).where(
            OutgoingMail.to_address == address).order_by(OutgoingMail.id)))


def request_reset(api: Any, email: str) -> None:
    response = api.post("/auth/password-reset/request", json={"email": email})
    assert response.status_code == 202
    assert response.get_json() == RESET_REQUESTED


def reset_link(api: Any, smtp: MailCatcher, email: str) -> str:
    request_reset(api, email)
    return smtp.wait_for_link(email, "reset-password")


def a_link_of(db: Database, user_id: str, *, expires_in: timedelta) -> str:
    """A reset link written straight into the table, expiring `expires_in` from now."""
    secret = f"test-secret-{os.urandom(16).hex()}"
    with db.sessions() as session:
        session.execute(insert(PasswordReset).values(
            user_id=user_id, token=secret_hash(secret),
            created_at=func.now() + expires_in - recovery.RESET_TTL,
            expires_at=func.now() + expires_in))
        session.commit()
    return secret


def confirm(api: Any, token: str, password: str = NEW_PASSWORD, **kwargs: Any) -> Any:
    return api.post("/auth/password-reset/confirm",
                    json={"token": token, "password": password}, **kwargs)


def assert_bad_link(response: Any) -> None:
    assert response.status_code == 400, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert set(response.get_json()["errors"]) == {"token"}


# -- verifying an email ----------------------------------------------------------------------


def test_registering_mails_a_link_that_verifies_the_email(
        api: Any, db: Database, register: Register, smtp: MailCatcher,
        mail_worker: threading.Event) -> None:
    user = register(name="Ada")
    assert user["verified"] is False and user["emailVerified"] is None

    [mail] = smtp.wait_for_mail(user["email"])
    url, kind, token = link_in(mail)
    assert kind == "verify-email"
    assert url == f"http://localhost:8080/verify-email?token={token}"
    assert mail["From"] == "Growth Diary <no-reply@growth-diary.local>"
    assert "Ada" in mail.get_content()
    with db.sessions() as session:
        stored = session.scalars(select(VerificationToken.token).where(
            VerificationToken.identifier.contains(user["id"]))).all()
    assert stored == [secret_hash(token)]  # only the hash is kept

    assert api.post("/auth/verify-email", json={"token": token}).status_code == 204

    me = api.get("/auth/me", headers=bearer(log_in(api, user["email"])["accessToken"]))
    assert me.get_json()["verified"] is True and me.get_json()["emailVerified"]
    assert_bad_link(api.post("/auth/verify-email", json={"token": token}))  # single use
    [sent] = queued_for(db, user["email"])
    assert sent.sent_at is not None and sent.body == ""  # the link is not kept once sent


def test_a_new_verification_link_can_be_asked_for_once_a_minute(
        api: Any, db: Database, register: Register, smtp: MailCatcher,
        mail_worker: threading.Event) -> None:
    user = register()
    headers = bearer(log_in(api, user["email"])["accessToken"])
    smtp.wait_for_mail(user["email"])

    response = api.post("/auth/verify-email/resend", headers=headers)  # just registered
    assert response.status_code == 202 and response.get_json() == VERIFICATION_RESENT
    assert len(queued_for(db, user["email"])) == 1
    with db.sessions() as session:  # a minute later
        session.execute(update(VerificationToken)
                        .where(VerificationToken.identifier.contains(user["id"]))
                        .values(expires=VerificationToken.expires - timedelta(minutes=2)))
        session.commit()
    assert api.post("/auth/verify-email/resend", headers=headers).status_code == 202

    first, second = smtp.wait_for_mail(user["email"], count=2)
    assert link_in(first)[2] != link_in(second)[2]
    assert api.post("/auth/verify-email", json={"token": link_in(second)[2]}).status_code == 204
    assert api.post("/auth/verify-email", json={"token": link_in(first)[2]}).status_code == 400
    assert api.post("/auth/verify-email/resend", headers=headers).status_code == 202
    assert len(queued_for(db, user["email"])) == 2  # verified: nothing more to send
    assert api.post("/auth/verify-email/resend").status_code == 401


def test_a_verification_link_is_refused_once_expired(
        api: Any, db: Database, register: Register) -> None:
    user = register()
    secret = "an expired verification secret"
    with db.sessions() as session:
        session.execute(insert(VerificationToken).values(
            identifier=f"{recovery.VERIFY_PREFIX}{user['id']}:{user['email']}",
            token=secret_hash(secret), expires=func.now() - timedelta(minutes=1)))
        session.commit()

    assert_bad_link(api.post("/auth/verify-email", json={"token": secret}))
    assert_bad_link(api.post("/auth/verify-email", json={"token": "never issued"}))
    stored = load_user(db, user["id"])
    assert stored is not None and stored.verified is False


# -- resetting a forgotten password ----------------------------------------------------------


def test_a_reset_link_sets_a_new_password_and_ends_every_session_and_link(
        api: Any, db: Database, register: Register, smtp: MailCatcher,
        mail_worker: threading.Event) -> None:
    user = register()
    [verification] = smtp.wait_for_mail(user["email"])
    laptop, phone = log_in(api, user["email"]), log_in(api, user["email"])

    token = reset_link(api, smtp, user["email"])
    with db.sessions() as session:
        row = session.scalars(select(PasswordReset).where(
            PasswordReset.user_id == user["id"])).one()
    assert row.token == secret_hash(token)
    assert row.expires_at - row.created_at == timedelta(hours=1)

    assert confirm(api, token).status_code == 204

    assert api.post("/auth/login", json={"email": user["email"], "password": PASSWORD}
                    ).status_code == 401
    log_in(api, user["email"], NEW_PASSWORD)
    assert not refreshes(api, laptop) and not refreshes(api, phone)
    assert_bad_link(api.post("/auth/verify-email", json={"token": link_in(verification)[2]}))
    assert_bad_link(confirm(api, token, "yet another long passphrase"))  # single use
    stored = load_user(db, user["id"])
    assert stored is not None and stored.verified  # the link proved the mailbox, too


def test_asking_for_a_reset_answers_alike_for_unknown_emails_and_mails_nobody(
        api: Any, db: Database, register: Register, smtp: MailCatcher,
        mail_worker: threading.Event) -> None:
    known, unknown = register()["email"], unique_email("nobody")

    answers = [api.post("/auth/password-reset/request", json={"email": email})
               for email in (unknown, known)]

    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].get_json() == answers[1].get_json() == RESET_REQUESTED
    smtp.wait_for_mail(known, count=2)  # the verification mail and the reset link
    assert queued_for(db, unknown) == [] and smtp.to(unknown) == []


def test_asking_for_resets_in_a_burst_mails_one_link(
        api: Any, db: Database, register: Register) -> None:
    email = register()["email"]

    for _ in range(5):
        request_reset(api, email.upper())

    assert [m.subject for m in queued_for(db, email)].count(
        "Reset your Growth Diary password") == 1


def test_a_reset_link_is_good_for_an_hour(api: Any, db: Database, register: Register) -> None:
    user = register()
    at_61_minutes = a_link_of(db, user["id"], expires_in=timedelta(minutes=-1))
    at_59_minutes = a_link_of(db, user["id"], expires_in=timedelta(minutes=1))

    assert_bad_link(confirm(api, at_61_minutes))
    assert confirm(api, at_59_minutes).status_code == 204
    log_in(api, user["email"], NEW_PASSWORD)


def test_a_refused_new_password_leaves_the_link_usable(
        api: Any, db: Database, register: Register) -> None:
    user = register()
    token = a_link_of(db, user["id"], expires_in=timedelta(minutes=30))

    for weak in ("password123", user["email"]):  # common; the account's own email
        response = confirm(api, token, weak)
        assert response.status_code == 422
        assert set(response.get_json()["errors"]) == {"password"}

    assert confirm(api, token).status_code == 204


def test_a_link_acts_only_on_the_account_it_was_sent_for(
        api: Any, db: Database, register: Register) -> None:
    owner, other = register(), register()
    others_login = log_in(api, other["email"])
    token = a_link_of(db, owner["id"], expires_in=timedelta(minutes=30))

    # Sent by someone logged in as `other`: still resets the owner's password, not theirs.
    assert confirm(api, token, headers=bearer(others_login["accessToken"])).status_code == 204

    log_in(api, owner["email"], NEW_PASSWORD)
    log_in(api, other["email"], PASSWORD)
    assert refreshes(api, others_login)


def test_a_verification_link_verifies_only_the_address_it_was_sent_to(
        api: Any, db: Database, register: Register) -> None:
    owner, other = register(), register()
    mine = "verification secret of the owner"
    with db.sessions() as session:
        session.execute(insert(VerificationToken).values(
            identifier=f"{recovery.VERIFY_PREFIX}{owner['id']}:{other['email']}",
            token=secret_hash(mine), expires=func.now() + timedelta(hours=1)))
        session.commit()

    assert_bad_link(api.post("/auth/verify-email", json={"token": mine}))

    for user in (owner, other):
        stored = load_user(db, user["id"])
        assert stored is not None and not stored.verified


# -- one link, many hands --------------------------------------------------------------------


def race(db: Database, attempt: Callable[[UnitOfWork, int], object]) -> list[int]:
    """Run `attempt` in sixteen threads at once, each with its own (unopened) unit of work;
    returns the numbers of those that did not raise InvalidLink."""
    winners: list[int] = []

    def run(n: int) -> None:
        try:
            attempt(UnitOfWork(db, source="/tests"), n)  # the use case opens it
            winners.append(n)
        except recovery.InvalidLink:
            pass

    errors = at_once(16, run)
    assert not errors, errors
    return winners


def test_sixteen_concurrent_redemptions_of_a_reset_link_let_exactly_one_through(
        db: Database, wide_db: Database, register: Register) -> None:
    user = register()
    token = a_link_of(db, user["id"], expires_in=timedelta(minutes=30))

    winners = race(wide_db, lambda uow, n: recovery.confirm_password_reset(
        uow, token=token, password=f"{NEW_PASSWORD} {n}"))

    [winner] = winners
    stored = load_user(db, user["id"])
    assert stored is not None
    assert passwords.verify_password(stored.password, f"{NEW_PASSWORD} {winner}")


def test_sixteen_concurrent_redemptions_of_a_verification_link_let_exactly_one_through(
        db: Database, wide_db: Database, register: Register) -> None:
    user = register()
    secret = "a verification secret raced for"
    with db.sessions() as session:
        session.execute(insert(VerificationToken).values(
            identifier=f"{recovery.VERIFY_PREFIX}{user['id']}:{user['email']}",
            token=secret_hash(secret), expires=func.now() + timedelta(hours=1)))
        session.commit()

    winners = race(wide_db, lambda uow, _n: recovery.verify_email(uow, token=secret))

    assert len(winners) == 1


# -- changing a known password ---------------------------------------------------------------


def test_changing_my_password_ends_my_other_sessions_and_reset_links(
        api: Any, db: Database, register: Register) -> None:
    user = register()
    here, elsewhere = log_in(api, user["email"]), log_in(api, user["email"])
    pending = a_link_of(db, user["id"], expires_in=timedelta(minutes=30))

    response = api.post("/auth/me/password", headers=bearer(here["accessToken"]), json={
        "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD})

    assert response.status_code == 204
    assert refreshes(api, here) and not refreshes(api, elsewhere)
    assert_bad_link(confirm(api, pending, "a reset that comes too late"))
    assert api.post("/auth/login", json={"email": user["email"], "password": PASSWORD}
                    ).status_code == 401
    log_in(api, user["email"], NEW_PASSWORD)


def test_changing_my_password_needs_the_current_one_and_a_good_new_one(
        api: Any, db: Database, register: Register) -> None:
    user = register()
    headers = bearer(log_in(api, user["email"])["accessToken"])

    wrong = api.post("/auth/me/password", headers=headers, json={
        "currentPassword": "not my password at all", "newPassword": NEW_PASSWORD})
    weak = api.post("/auth/me/password", headers=headers, json={
        "currentPassword": PASSWORD, "newPassword": "password123"})
    anonymous = api.post("/auth/me/password", json={
        "currentPassword": PASSWORD, "newPassword": NEW_PASSWORD})

    assert wrong.status_code == 422 and set(wrong.get_json()["errors"]) == {"currentPassword"}
    assert weak.status_code == 422 and set(weak.get_json()["errors"]) == {"newPassword"}
    assert anonymous.status_code == 401
    with db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(UserSession).where(
            UserSession.user_id == user["id"])) == 1
    log_in(api, user["email"], PASSWORD)


# -- delivery ---------------------------------------------------------------------------------


def test_mail_waits_out_an_smtp_outage_and_is_then_delivered(
        api: Any, db: Database, register: Register, smtp: MailCatcher,
        mail_worker: threading.Event) -> None:
    email = register()["email"]
    smtp.wait_for_mail(email)
    smtp.stop()
    try:
        request_reset(api, email)
        wait_for(lambda: (m := queued_for(db, email)[-1]).attempts >= 2 and m.last_error,
                 message="failed delivery attempts")
        [queued] = [m for m in queued_for(db, email) if m.sent_at is None]
        assert "token=" in queued.body
    finally:
        smtp.start()

    _, reset = smtp.wait_for_mail(email, count=2)
    assert confirm(api, link_in(reset)[2]).status_code == 204


def test_secrets_reach_neither_logs_nor_responses(
        api: Any, db: Database, caplog: pytest.LogCaptureFixture, register: Register,
        smtp: MailCatcher, mail_worker: threading.Event) -> None:
    caplog.set_level(logging.DEBUG)
    user = register()
    [verification] = smtp.wait_for_mail(user["email"])
    token = reset_link(api, smtp, user["email"])
    responses = [confirm(api, token), confirm(api, token),
                 api.post("/auth/verify-email", json={"token": link_in(verification)[2]})]

    secrets = {token, secret_hash(token), link_in(verification)[2]}
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records  # the flow did log (mail sent, password reset)
    for secret in secrets:
        assert secret not in logged
        assert all(secret not in r.get_data(as_text=True) for r in responses)


def test_retries_double_up_to_a_cap_and_never_stop() -> None:
    cfg = MailSettings(retry_base_s=5, retry_max_s=300)

    delays = [retry_delay(attempts, cfg) for attempts in (1, 2, 3, 6, 7, 50, 10_000)]

    assert delays == [5, 10, 20, 160, 300, 300, 300]


def test_without_an_smtp_host_mail_is_written_to_the_mail_folder(
        db: Database, register: Register, tmp_path: Path) -> None:
    email = register()["email"]

    MailDelivery(MailSettings(smtp_host="", mail_dir=tmp_path), db).drain(threading.Event())

    [written] = [p for p in tmp_path.glob("*.eml") if email in p.read_text()]
    assert "verify-email?token=" in written.read_text()
    assert queued_for(db, email)[0].sent_at is not None


def test_the_worker_process_delivers_mail_over_smtp(
        api: Any, register: Register, smtp: MailCatcher, tmp_path: Path) -> None:
    worker = ServiceProcess(
        [PYTHON, "-m", "services.auth.worker"],
        {**os.environ, "SMTP_HOST": smtp.host, "SMTP_PORT": str(smtp.port)},
        tmp_path / "auth-worker.log").start()
    try:
        email = register()["email"]
        [mail] = smtp.wait_for_mail(email, timeout=30)
    finally:
        assert worker.terminate() == 0, worker.log_tail()
    assert link_in(mail)[1] == "verify-email"


def test_the_openapi_document_describes_the_recovery_routes(api: Any) -> None:
    paths = api.get("/auth/openapi.json").get_json()["paths"]

    assert paths["/auth/verify-email"]["post"]["responses"].keys() >= {"204", "400", "422"}
    assert "security" not in paths["/auth/password-reset/request"]["post"]
    assert paths["/auth/password-reset/confirm"]["post"]["requestBody"]
    for path in ("/auth/verify-email/resend", "/auth/me/password"):
        assert paths[path]["post"]["security"] == [{"bearer": []}]
