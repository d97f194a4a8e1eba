"""The goals worker: `python -m services.goals.worker` (outbox relay, event consumer, and
the answers to resyncs of goals: shared.resync)."""

from services.goals.handlers import HANDLERS
from services.goals.usecases import goal_snapshots
from shared.resync import Answerer, Source
from shared.worker import run_worker

if __name__ == "__main__":
    answers = Answerer("goals", Source("goals.goal.snapshot", goal_snapshots))
    run_worker("goals", HANDLERS, loops=[answers.run])
