"""`python -m services.diary.reconcile` (`make reconcile-counts SERVICE=diary`): recompute
every post's like and reply counters from the rows, fix any that drifted, say which.

The counters are exact by construction (see usecases); this is the check that proves it,
and the mend if a hand or a bug ever changes one. It runs beside live traffic, a batch of
posts per transaction: each batch's counter rows are locked first, and only then counted
(a new snapshot under READ COMMITTED), so a like committed before the lock is in the count,
and one still in flight adds its `+ 1` to the corrected value after we commit.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from sqlalchemy import text

from shared.config import Settings, load_env_file
from shared.db import Database, UnitOfWork

BATCH = 5_000

NEXT_BATCH = text("SELECT id FROM posts WHERE id > :after ORDER BY id LIMIT :size")
ADD_MISSING = text("""
    INSERT INTO post_stats (post_id) SELECT unnest(CAST(:ids AS varchar[]))
    ON CONFLICT (post_id) DO NOTHING
""")
LOCK = text("""
    SELECT post_id FROM post_stats WHERE post_id = ANY(CAST(:ids AS varchar[]))
    ORDER BY post_id FOR UPDATE
""")
FIX = text("""
    UPDATE post_stats s SET like_count = truth.likes, reply_count = truth.replies
    FROM (SELECT p.id,
                 (SELECT count(*) FROM likes l WHERE l.post_id = p.id) AS likes,
                 (SELECT count(*) FROM replies r WHERE r.post_id = p.id) AS replies
          FROM unnest(CAST(:ids AS varchar[])) AS p(id)) AS truth,
         post_stats kept
    WHERE s.post_id = truth.id AND kept.post_id = truth.id
      AND (kept.like_count, kept.reply_count) IS DISTINCT FROM (truth.likes, truth.replies)
    RETURNING s.post_id, kept.like_count AS kept_likes, truth.likes,
              kept.reply_count AS kept_replies, truth.replies
""")


@dataclass(frozen=True)
class Drift:
    post_id: str
    kept_likes: int
    likes: int
    kept_replies: int
    replies: int


def reconcile_counts(db: Database, *, batch: int = BATCH) -> tuple[int, list[Drift]]:
    """(posts checked, the counters fixed)."""
    checked, after = 0, ""
    fixed: list[Drift] = []
    while True:
        uow = UnitOfWork(db, source="/diary/reconcile")
        with uow:
            ids = list(uow.session.scalars(NEXT_BATCH, {"after": after, "size": batch}))
            if not ids:
                return checked, fixed
            uow.session.execute(ADD_MISSING, {"ids": ids})
            uow.session.execute(LOCK, {"ids": ids})
            fixed += [Drift(*row) for row in uow.session.execute(FIX, {"ids": ids})]
            uow.commit()
        checked, after = checked + len(ids), ids[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.diary.reconcile",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=BATCH, help="posts per transaction")
    args = parser.parse_args(argv)
    load_env_file()
    db = Database(Settings.from_env("diary").database_url, "diary", pool_size=1)
    try:
        checked, fixed = reconcile_counts(db, batch=args.batch)
    finally:
        db.dispose()
    for d in fixed:
        print(f"post {d.post_id}: likes {d.kept_likes} -> {d.likes}, "
              f"replies {d.kept_replies} -> {d.replies}")
    print(f"reconcile-counts: {checked} posts checked, {len(fixed)} with drift fixed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
