"""The stories worker: `python -m services.stories.worker` (outbox relay + event consumer)."""

from services.stories.handlers import HANDLERS
from shared.worker import run_worker

if __name__ == "__main__":
    run_worker("stories", HANDLERS)
