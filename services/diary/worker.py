"""The diary worker: `python -m services.diary.worker` (outbox relay + event consumer)."""

from services.diary.handlers import HANDLERS
from shared.worker import run_worker

if __name__ == "__main__":
    run_worker("diary", HANDLERS)
