"""Which users have been deleted, and which had their access tokens revoked: the check of
every request answered in process, without a database round trip.

A trigger on each service's `deleted_user` table NOTIFYs `tombstone_<schema>` with the user
id when a tombstone is laid (at the consumer's commit); one on `revoked_token` NOTIFYs
`revocation_<schema>` with "<user id> <cutoff>" when a user's cutoff is set or moved
(log out everywhere, a password change or reset: `auth.user.sessions_revoked`). Each web
process keeps the tombstones and cutoffs of the last `horizon_s` in memory, loaded when its
listener connects and kept current by those notifications, so such a user's token is
refused within milliseconds of the event being applied.

Only recent entries need to be in memory: a deleted user's access tokens were all issued
before the deletion, and a revoked token before its cutoff, so a token issued within the
horizon can only be refused by an entry younger than the horizon. A token issued earlier
than that (longer-lived than the horizon) is checked against the tables, as is every token
while the listener is down (a database restart): the answer is exact either way.

The cutoff rule: a token is revoked when its `iat` is before the user's cutoff, compared to
the microsecond. Auth takes both from one clock, whole microseconds (`iat` is a number with
six decimals, the cutoff a timestamptz): a token issued after the revocation, even in the
same second, stays good; one issued before is refused. A token with a whole-second `iat`
(issued before auth had sub-second ones) issued in the second of a revocation is refused
even if it came just after it: the error goes the safe way, and a refresh mends it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from sqlalchemy import select

from shared.db import Database
from shared.retry import Backoff, keep_running

log = logging.getLogger(__name__)
CLOCK_MARGIN_S = 60.0  # auth's clock against this one's, and tombstone lag


class Tombstones:
    def __init__(self, db: Database, *, horizon_s: float) -> None:
        self.db = db
        self.horizon_s = horizon_s
        self._laid: dict[str, float] = {}  # user id -> when we learnt of it (monotonic)
        # user id -> (cutoff, epoch seconds; when we learnt of it, monotonic)
        self._revoked: dict[str, tuple[float, float]] = {}
        self._live = False
        self._pid = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @property
    def channel(self) -> str:
        return f"tombstone_{self.db.schema}"

    @property
    def revocation_channel(self) -> str:
        return f"revocation_{self.db.schema}"

    @property
    def live(self) -> bool:
        """True while the set is current (its listener connected and loaded)."""
        return self._live and self._pid == os.getpid()

    def refuses(self, user_id: str, *, issued_at: float) -> bool:
        """Is a token of `user_id` issued at `issued_at` (its iat, epoch seconds) to be
        refused: the user deleted, or their tokens revoked after it was issued? From memory
        for a recent token while the listener is live, else one query of both tables."""
        self.start()
        if self._recent(issued_at) and self.live:
            return user_id in self._laid or self._revoked_in_memory(user_id, issued_at)
        tombstones, revocations = self.db.tombstones, self.db.revocations
        with self.db.read_sessions() as session:
            deleted, cutoff = session.execute(select(
                select(tombstones.c.user_id).where(tombstones.c.user_id == user_id)
                .exists().label("deleted"),
                select(revocations.c.revoked_at).where(revocations.c.user_id == user_id)
                .scalar_subquery().label("cutoff"))).one()
        return bool(deleted) or (cutoff is not None and issued_at < cutoff.timestamp())

    def note_revoked(self, user_id: str, cutoff: float) -> None:
        """A revocation this process has just committed itself (auth): refused here at
        once, before its notification comes back."""
        self._remember_revocation(user_id, cutoff)

    def _recent(self, issued_at: float) -> bool:
        return issued_at > time.time() - self.horizon_s + CLOCK_MARGIN_S

    def _revoked_in_memory(self, user_id: str, issued_at: float) -> bool:
        entry = self._revoked.get(user_id)
        return entry is not None and issued_at < entry[0]

    def _remember_revocation(self, user_id: str, cutoff: float) -> None:
        entry = self._revoked.get(user_id)
        if entry is None or entry[0] < cutoff:  # the latest cutoff stands
            self._revoked[user_id] = (cutoff, time.monotonic())

    def start(self) -> None:
        """Start the listener in this process, once (gunicorn forks after the app loads,
        and threads do not survive a fork)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._live = False
            self._laid = {}
            self._revoked = {}
            self._stop = threading.Event()
            threading.Thread(target=self._listen, name="tombstones", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _listen(self) -> None:
        def session(backoff: Backoff) -> None:
            with self.db.listen(self.channel, self.revocation_channel) as conn:
                self._load(conn)  # after LISTEN: nothing laid in between is missed
                backoff.reset()
                while not self._stop.is_set():
                    for note in conn.notifies(timeout=5.0):
                        if note.channel == self.revocation_channel:
                            user_id, _, cutoff = note.payload.rpartition(" ")
                            self._remember_revocation(user_id, float(cutoff))
                        else:
                            self._laid[note.payload] = time.monotonic()
                    self._prune()

        keep_running(session, self._stop, what="tombstone listener", on_failure=self._down)
        self._live = False

    def _down(self) -> None:
        self._live = False  # answer from the table until the listener is back

    def _load(self, conn: Any) -> None:
        table = f'"{self.db.schema}".deleted_user'
        rows = conn.execute(
            f"SELECT user_id FROM {table} WHERE deleted_at > now() - make_interval(secs => %s)",
            (self.horizon_s,)).fetchall()
        revoked = conn.execute(
            f'SELECT user_id, extract(epoch FROM revoked_at)::text FROM '
            f'"{self.db.schema}".revoked_token '
            "WHERE revoked_at > now() - make_interval(secs => %s)",
            (self.horizon_s,)).fetchall()
        now = time.monotonic()
        self._laid = {user_id: now for (user_id,) in rows}
        self._revoked = {user_id: (float(cutoff), now) for user_id, cutoff in revoked}
        self._live = True

    def _prune(self) -> None:
        oldest = time.monotonic() - self.horizon_s - CLOCK_MARGIN_S
        stale = [user_id for user_id, seen in self._laid.items() if seen < oldest]
        for user_id in stale:
            self._laid.pop(user_id, None)
        for user_id in [u for u, (_, seen) in self._revoked.items() if seen < oldest]:
            self._revoked.pop(user_id, None)
