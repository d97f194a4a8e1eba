"""Which users have been deleted, answered in process: the deleted-user check of every
request without a database round trip.

A trigger on each service's `deleted_user` table NOTIFYs `tombstone_<schema>` with the user
id when a tombstone is laid (at the consumer's commit). Each web process keeps a set of the
tombstones laid in the last `horizon_s`, loaded when its listener connects and kept current
by those notifications, so a deleted user's token is refused within milliseconds of the
event being applied.

Only recent tombstones need to be in memory: a deleted user's access tokens were all issued
before the deletion, so a token issued within the horizon can only belong to a user whose
tombstone is younger than the horizon. A token issued earlier than that (longer-lived than
the horizon) is checked against the table, as is every token while the listener is down
(a database restart): the answer is exact either way.
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
        self._live = False
        self._pid = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @property
    def channel(self) -> str:
        return f"tombstone_{self.db.schema}"

    @property
    def live(self) -> bool:
        """True while the set is current (its listener connected and loaded)."""
        return self._live and self._pid == os.getpid()

    def is_deleted(self, user_id: str, *, issued_at: float) -> bool:
        """Is `user_id` deleted? `issued_at` (the token's iat, epoch seconds) says whether
        the in-memory set can answer or the table must."""
        self.start()
        recent = issued_at > time.time() - self.horizon_s + CLOCK_MARGIN_S
        if recent and self.live:
            return user_id in self._laid
        with self.db.read_sessions() as session:
            found = session.execute(select(self.db.tombstones.c.user_id).where(
                self.db.tombstones.c.user_id == user_id)).first()
        return found is not None

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
            self._stop = threading.Event()
            threading.Thread(target=self._listen, name="tombstones", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _listen(self) -> None:
        def session(backoff: Backoff) -> None:
            with self.db.listen(self.channel) as conn:
                self._load(conn)  # after LISTEN: nothing laid in between is missed
                backoff.reset()
                while not self._stop.is_set():
                    for note in conn.notifies(timeout=5.0):
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
        now = time.monotonic()
        self._laid = {user_id: now for (user_id,) in rows}
        self._live = True

    def _prune(self) -> None:
        oldest = time.monotonic() - self.horizon_s - CLOCK_MARGIN_S
        stale = [user_id for user_id, seen in self._laid.items() if seen < oldest]
        for user_id in stale:
            self._laid.pop(user_id, None)
