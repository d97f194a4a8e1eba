"""The diary worker: `python -m services.diary.worker` (outbox relay, event consumer, and
the answers to resyncs of posts: shared.resync)."""

from services.diary.handlers import HANDLERS
from services.diary.usecases import post_snapshots
from shared.resync import Source
from shared.worker import run_worker


def main() -> None:
    run_worker("diary", HANDLERS, snapshots=Source("diary.post.snapshot", post_snapshots))


if __name__ == "__main__":
    main()
