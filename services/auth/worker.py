"""The auth worker: `python -m services.auth.worker` (outbox relay + event consumer)."""

from services.auth.handlers import HANDLERS
from shared.worker import run_worker

if __name__ == "__main__":
    run_worker("auth", HANDLERS)
