"""The diary worker: `python -m services.diary.worker` (outbox relay, event consumer, and
the answers to resyncs of posts: shared.resync)."""

from services.diary.handlers import HANDLERS
from services.diary.usecases import post_snapshots
from shared.config import Settings, load_env_file
from shared.health import Vitals
from shared.resync import Answerer, Source
from shared.worker import run_worker


def main() -> None:
    load_env_file()
    settings = Settings.from_env("diary")
    vitals = Vitals(stall_after_s=settings.worker_stall_s)
    answers = Answerer("diary", Source("diary.post.snapshot", post_snapshots),
                       pulse=vitals.pulse("resync-answers"))
    run_worker("diary", HANDLERS, loops=[answers.run], settings=settings, vitals=vitals,
               backlogs=[Answerer.backlog])


if __name__ == "__main__":
    main()
