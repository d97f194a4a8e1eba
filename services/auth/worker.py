"""The auth worker: `python -m services.auth.worker` (outbox relay, event consumer and
the mail outbox's delivery)."""

from services.auth.handlers import HANDLERS
from services.auth.mail import deliver_mail
from shared.worker import run_worker

if __name__ == "__main__":
    run_worker("auth", HANDLERS, loops=[deliver_mail])
