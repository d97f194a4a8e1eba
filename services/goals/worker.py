"""The goals worker: `python -m services.goals.worker` (outbox relay + event consumer)."""

from services.goals.handlers import HANDLERS
from shared.worker import run_worker

if __name__ == "__main__":
    run_worker("goals", HANDLERS)
