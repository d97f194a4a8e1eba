"""Outgoing mail: queued by use cases in their own transaction, delivered by the worker.

A request never talks to SMTP: `queue_mail` adds an `auth.mail_outbox` row and a NOTIFY to
the caller's transaction, so the mail exists exactly when the change that asked for it does.
The worker's loop (`MailDelivery.run`) wakes on that NOTIFY (and on a timer), claims due
rows with FOR UPDATE SKIP LOCKED (any number of workers share the queue), sends them, and
clears the body, which may hold a one-time link. A failed send is retried with capped exponential
backoff and never given up: a down SMTP server delays mail, it loses none. Delivery is at
least once: a worker killed between SMTP's "250" and the commit sends that mail again.

With no SMTP_HOST (the local default) each mail is written as an .eml file into MAIL_DIR.
"""

from __future__ import annotations

import contextlib
import logging
import os
import smtplib
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol

import psycopg
from sqlalchemy import delete, extract, func, select, update
from sqlalchemy.orm import Session

from services.auth.models import OutgoingMail
from shared.config import env, env_int
from shared.db import Database
from shared.health import Pulse
from shared.retry import Backoff, keep_running

log = logging.getLogger(__name__)
CHANNEL = "mail_auth"
DEFAULT_FROM = "Growth Diary <no-reply@growth-diary.local>"
LISTEN_TICK_S = 0.5  # how often a waiting loop looks at its stop event
MIN_WAIT_S = 0.2  # due rows another worker holds: look again soon, but do not spin


def _env_bool(name: str, default: bool) -> bool:
    return env(name, "true" if default else "false").strip().lower() in {"1", "true", "yes",
                                                                          "on"}


@dataclass(frozen=True)
class MailSettings:
    smtp_host: str = ""  # empty: write .eml files into mail_dir instead
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_starttls: bool = False
    mail_from: str = DEFAULT_FROM
    mail_dir: Path = Path("var/mail")
    retry_base_s: float = 5.0
    retry_max_s: float = 300.0
    poll_s: float = 30.0  # the periodic check, in case a NOTIFY was missed
    timeout_s: float = 10.0
    retention: timedelta = timedelta(days=7)  # sent rows (bodies already cleared)

    @classmethod
    def from_env(cls) -> MailSettings:
        return cls(
            smtp_host=env("SMTP_HOST", ""),
            smtp_port=env_int("SMTP_PORT", 25),
            smtp_user=env("SMTP_USER", ""),
            smtp_password=env("SMTP_PASSWORD", ""),
            smtp_starttls=_env_bool("SMTP_STARTTLS", False),
            mail_from=env("MAIL_FROM", DEFAULT_FROM),
            mail_dir=Path(env("MAIL_DIR", "var/mail")),
            retry_base_s=float(env("MAIL_RETRY_BASE_SECONDS", "5")),
            retry_max_s=float(env("MAIL_RETRY_MAX_SECONDS", "300")),
            poll_s=float(env("MAIL_POLL_SECONDS", "30")),
        )


def queue_mail(session: Session, *, to: str, subject: str, body: str) -> None:
    """Queue a mail in the caller's transaction; the NOTIFY reaches the worker at commit."""
    session.add(OutgoingMail(to_address=to, subject=subject, body=body))
    session.execute(select(func.pg_notify(CHANNEL, "")))


def retry_delay(attempts: int, cfg: MailSettings) -> float:
    """Seconds before the next try after `attempts` failures: doubling, capped, endless."""
    return min(cfg.retry_base_s * 2 ** min(max(attempts - 1, 0), 32), cfg.retry_max_s)


class Mailer(Protocol):
    def send(self, message: EmailMessage, *, name: str) -> None: ...

    def close(self) -> None: ...


class SmtpMailer:
    """One SMTP connection per delivery pass, opened on the first mail of the pass."""

    def __init__(self, cfg: MailSettings) -> None:
        self.cfg = cfg
        self._smtp: smtplib.SMTP | None = None

    def send(self, message: EmailMessage, *, name: str) -> None:
        try:
            self._connection().send_message(message)
        except BaseException:
            self.close()  # whatever state the session is in, the next mail starts afresh
            raise

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            smtp = smtplib.SMTP(self.cfg.smtp_host, self.cfg.smtp_port,
                                timeout=self.cfg.timeout_s)
            try:
                if self.cfg.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.cfg.smtp_user:
                    smtp.login(self.cfg.smtp_user, self.cfg.smtp_password)
            except BaseException:
                smtp.close()
                raise
            self._smtp = smtp
        return self._smtp

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            smtp.close()


class MailDirMailer:
    """Local development: each mail becomes a file a developer can open."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: EmailMessage, *, name: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"{name}.eml"
        partial = final.with_suffix(".eml.part")
        partial.write_bytes(message.as_bytes())
        os.replace(partial, final)  # readers never see half a mail

    def close(self) -> None:
        pass


def mailer_for(cfg: MailSettings) -> Mailer:
    return SmtpMailer(cfg) if cfg.smtp_host else MailDirMailer(cfg.mail_dir)


def compose(mail: OutgoingMail, cfg: MailSettings) -> EmailMessage:
    message = EmailMessage()
    message["From"] = cfg.mail_from
    message["To"] = mail.to_address
    message["Subject"] = mail.subject
    message["Date"] = formatdate(usegmt=True)
    domain = parseaddr(cfg.mail_from)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(f"mail-{mail.id}", domain=domain)
    message.set_content(mail.body)
    return message


class MailDelivery:
    """The worker side of the mail outbox."""

    def __init__(self, cfg: MailSettings, db: Database, *, pulse: Pulse | None = None) -> None:
        self.cfg = cfg
        self.db = db
        self.pulse = pulse or Pulse("mail-delivery")
        self.mailer = mailer_for(cfg)
        self._last_prune = 0.0

    def deliver_one(self) -> bool:
        """Send the next due mail, in its own transaction; False when none is due."""
        with self.db.sessions() as session, session.begin():
            mail = session.scalars(
                select(OutgoingMail)
                .where(OutgoingMail.sent_at.is_(None), OutgoingMail.next_attempt_at <= func.now())
                .order_by(OutgoingMail.next_attempt_at, OutgoingMail.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).first()
            if mail is None:
                return False
            try:
                self.mailer.send(compose(mail, self.cfg),
                                 name=f"{mail.created_at:%Y%m%dT%H%M%S}-{mail.id}")
            except Exception as exc:  # noqa: BLE001 - every failure is retried later
                delay = retry_delay(mail.attempts + 1, self.cfg)
                session.execute(update(OutgoingMail).where(OutgoingMail.id == mail.id).values(
                    attempts=OutgoingMail.attempts + 1,
                    last_error=f"{type(exc).__name__}: {exc}"[:500],
                    next_attempt_at=func.now() + timedelta(seconds=delay)))
                log.warning("mail not sent, will retry", extra={
                    "mail_id": mail.id, "attempts": mail.attempts + 1, "retry_in_s": delay,
                    "error": type(exc).__name__})
            else:
                # The body may hold a one-time link: of no use to anyone from here on.
                session.execute(update(OutgoingMail).where(OutgoingMail.id == mail.id).values(
                    sent_at=func.now(), body="", last_error=None))
                log.info("mail sent", extra={"mail_id": mail.id})
            return True

    def drain(self, stop: threading.Event) -> int:
        """Try every mail due now; returns how many were tried."""
        tried = 0
        try:
            while not stop.is_set() and self.deliver_one():
                tried += 1
        finally:
            self.mailer.close()  # an idle connection would be dropped by the server anyway
        return tried

    @staticmethod
    def backlog(db: Database) -> dict[str, float]:
        """Mail not sent yet (due or waiting to be retried), for the worker's health."""
        with db.sessions() as session:
            pending = session.scalar(select(func.count()).select_from(OutgoingMail)
                                     .where(OutgoingMail.sent_at.is_(None)))
        return {"mail_pending": float(pending or 0)}

    def seconds_until_due(self) -> float:
        with self.db.sessions() as session:
            due = session.scalar(
                select(extract("epoch", func.min(OutgoingMail.next_attempt_at) - func.now()))
                .where(OutgoingMail.sent_at.is_(None)))
        if due is None:
            return self.cfg.poll_s
        return min(max(float(due), MIN_WAIT_S), self.cfg.poll_s)

    def prune(self) -> None:
        """Forget sent mail after the retention period, at most once an hour."""
        now = time.monotonic()
        if self._last_prune and now - self._last_prune < 3600:
            return
        self._last_prune = now
        with self.db.sessions() as session, session.begin():
            session.execute(delete(OutgoingMail).where(
                OutgoingMail.sent_at < func.now() - self.cfg.retention))

    def run(self, stop: threading.Event) -> None:
        """Deliver until `stop` is set; survives database outages by reconnecting."""

        def session(backoff: Backoff) -> None:
            with self.db.listen(CHANNEL) as listener:
                backoff.reset()
                self.pulse.up()
                while not stop.is_set():
                    self.drain(stop)
                    self.prune()
                    self._wait(listener, stop, self.seconds_until_due())

        keep_running(session, stop, what="mail delivery", pulse=self.pulse)
        self.mailer.close()

    def _wait(self, listener: psycopg.Connection, stop: threading.Event, seconds: float) -> None:
        """Until a NOTIFY, `seconds` or `stop`, whichever comes first."""
        deadline = time.monotonic() + seconds
        while not stop.is_set():
            self.pulse.beat()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if any(True for _ in listener.notifies(timeout=min(left, LISTEN_TICK_S),
                                                   stop_after=1)):
                return
