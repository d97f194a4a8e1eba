"""The diary worker: `python -m services.diary.worker` (outbox relay, event consumer, and
the answers to resyncs of posts: shared.resync)."""

from services.diary.handlers import HANDLERS
from services.diary.usecases import post_snapshots
from shared.resync import Answerer, Source
from shared.worker import run_worker

if __name__ == "__main__":
    answers = Answerer("diary", Source("diary.post.snapshot", post_snapshots))
    run_worker("diary", HANDLERS, loops=[answers.run])
