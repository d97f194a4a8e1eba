"""The auth worker: `python -m services.auth.worker` (outbox relay, event consumer, the
mail outbox's delivery, and pruning of stale login counters)."""

from services.auth.handlers import HANDLERS
from services.auth.mail import deliver_mail
from services.auth.throttle import forget_stale_attempts
from shared.worker import run_worker

if __name__ == "__main__":
    run_worker("auth", HANDLERS, loops=[deliver_mail, forget_stale_attempts])
