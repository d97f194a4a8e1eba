"""The auth worker: `python -m services.auth.worker` (outbox relay, event consumer, the
mail outbox's delivery, pruning of stale login and abuse-limit counters, and the answers to
resyncs of profiles: shared.resync)."""

from __future__ import annotations

import threading

from services.auth.handlers import HANDLERS
from services.auth.mail import MailDelivery
from services.auth.settings import AuthSettings
from services.auth.throttle import forget_stale_attempts
from services.auth.users import profile_snapshots
from shared.config import Settings, load_env_file
from shared.db import Database
from shared.health import Vitals
from shared.resync import Source
from shared.worker import run_worker


def main() -> None:
    load_env_file()
    settings = AuthSettings.from_env()
    vitals = Vitals(stall_after_s=settings.base.worker_stall_s)

    def deliver_mail(_base: Settings, db: Database, stop: threading.Event) -> None:
        MailDelivery(settings.mail, db, pulse=vitals.pulse("mail-delivery")).run(stop)

    run_worker("auth", HANDLERS, loops=[deliver_mail, forget_stale_attempts],
               settings=settings.base, vitals=vitals, backlogs=[MailDelivery.backlog],
               snapshots=Source("auth.user.snapshot", profile_snapshots))


if __name__ == "__main__":
    main()
