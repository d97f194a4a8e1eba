"""A real SMTP server for tests (aiosmtpd on loopback) that can be stopped and started
again on the same port, to play an SMTP outage."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.helpers import wait_for

LINK = re.compile(r"(https?://\S+?/(verify-email|reset-password)\?token=([A-Za-z0-9_\-]+))")


class _Collect:
    def __init__(self, inbox: MailCatcher) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.inbox.received(list(envelope.rcpt_tos), message)
        return "250 Message accepted for delivery"


class MailCatcher:
    """Everything delivered to it, by recipient; `stop()`/`start()` simulate an outage."""

    def __init__(self) -> None:
        with socket.create_server(("127.0.0.1", 0)) as probe:
            self.port = probe.getsockname()[1]
        self.host = "127.0.0.1"
        self._messages: list[tuple[list[str], EmailMessage]] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> MailCatcher:
        self._controller = Controller(_Collect(self), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def received(self, recipients: list[str], message: EmailMessage) -> None:
        with self._lock:
            self._messages.append((recipients, message))

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for rcpts, m in self._messages if address in rcpts]

    def wait_for_mail(self, address: str, *, count: int = 1,
                      timeout: float = 10.0) -> list[EmailMessage]:
        """The first `count` mails to `address`, once that many have arrived."""
        return wait_for(lambda: self.to(address)[:count] if len(self.to(address)) >= count
                        else [], timeout=timeout, message=f"{count} mail(s) to {address}")

    def wait_for_link(self, address: str, kind: str, *, timeout: float = 10.0) -> str:
        """The token of the latest `kind` link ("verify-email", "reset-password") mailed to
        `address`, once one has arrived."""

        def latest() -> str:
            tokens = [token for m in self.to(address)
                      for _, k, token in [link_in(m)] if k == kind]
            return tokens[-1] if tokens else ""

        return wait_for(latest, timeout=timeout, message=f"a {kind} link for {address}")


def link_in(message: EmailMessage) -> tuple[str, str, str]:
    """(url, kind, token) of the one-time link in a mail's text."""
    body = message.get_body(("plain",))
    assert body is not None
    found = LINK.search(body.get_content())
    assert found, body.get_content()
    return found.group(1), found.group(2), found.group(3)


@pytest.fixture(name="smtp", scope="module")
def smtp_fixture() -> Iterator[MailCatcher]:
    """Import `smtp_fixture` into a test module to give its tests an `smtp` server."""
    catcher = MailCatcher().start()
    yield catcher
    catcher.stop()
