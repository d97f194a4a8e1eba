"""The goals worker: `python -m services.goals.worker` (outbox relay, event consumer, and
the answers to resyncs of goals: shared.resync)."""

from services.goals.handlers import HANDLERS
from services.goals.usecases import goal_snapshots
from shared.resync import Source
from shared.worker import run_worker


def main() -> None:
    run_worker("goals", HANDLERS, snapshots=Source("goals.goal.snapshot", goal_snapshots))


if __name__ == "__main__":
    main()
