"""The goals worker: `python -m services.goals.worker` (outbox relay, event consumer, and
the answers to resyncs of goals: shared.resync)."""

from services.goals.handlers import HANDLERS
from services.goals.usecases import goal_snapshots
from shared.config import Settings, load_env_file
from shared.health import Vitals
from shared.resync import Answerer, Source
from shared.worker import run_worker


def main() -> None:
    load_env_file()
    settings = Settings.from_env("goals")
    vitals = Vitals(stall_after_s=settings.worker_stall_s)
    answers = Answerer("goals", Source("goals.goal.snapshot", goal_snapshots),
                       pulse=vitals.pulse("resync-answers"))
    run_worker("goals", HANDLERS, loops=[answers.run], settings=settings, vitals=vitals,
               backlogs=[Answerer.backlog])


if __name__ == "__main__":
    main()
