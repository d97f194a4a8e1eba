"""Rebuild a read model from its producer (no event store): a resync.

A consumer whose copy of a producer's data is new, lost or corrupted asks for it again:
1. The asker records the request (its `resync` row: when it asked) and publishes
   `<asker>.resync.requested` through its own outbox, in one transaction (`request`).
2. The producer's worker records the request (`answering`), and its answer loop
   (`Answerer`) publishes its current state as `<entity>.snapshot` events: a keyset walk
   over its table, one batch per transaction (the cursor saved with the batch's outbox rows,
   so a restarted worker carries on where it stopped, and live writes go on between
   batches). Snapshots carry the live events' payloads and versions and are addressed to
   the asker alone (routing key `to.<asker>.<type>`, which only the asker's queue binds).
   After the last batch it publishes `<producer>.resync.completed` with the count.
3. The asker applies snapshots exactly as live events (versions, tombstones, its inbox),
   and each one, newer or not, marks its row confirmed (`synced_at`). At the completion
   (`completing`) the rows of that producer's entity confirmed neither by a snapshot nor by
   a live event since the request was made are removed: the producer no longer has them.
   A row created or changed live during the resync was confirmed by its live event, so
   live traffic is never swept away; a row the producer has is in the snapshot (the keyset
   walk visits every row that exists throughout it; one created after the walk passed its
   place is confirmed by its live event, which the asker applies after it asked).

`python -m shared.resync request --service stories --from goals` is what `make resync`
runs; `status` lists the resyncs a service asked for and whether they finished.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared import bus
from shared.config import Settings, env_int, load_env_file
from shared.consumer import Handler, each
from shared.db import Database, UnitOfWork
from shared.events import Event, ResyncCompleted, ResyncRequested
from shared.health import Pulse
from shared.retry import Backoff, keep_running

log = logging.getLogger(__name__)

# Who may ask whom: the asker's read models and the producers they are built from.
SOURCES: dict[str, tuple[str, ...]] = {"stories": ("goals", "diary", "auth"),
                                       "diary": ("auth",)}


def requested_type(asker: str) -> str:
    return f"{asker}.resync.requested"


def completed_type(producer: str) -> str:
    return f"{producer}.resync.completed"


# -- the asker ------------------------------------------------------------------------

def request(db: Database, *, asker: str, producer: str) -> str:
    """Ask `producer` for its current state: the request's row and its event, one
    transaction. Returns the request id (what the completion will answer)."""
    if producer not in SOURCES.get(asker, ()):
        raise ValueError(f"{asker} keeps no read model of {producer}'s data")
    request_id = uuid.uuid4().hex
    with UnitOfWork(db, source=asker) as uow:
        uow.session.execute(insert(db.resyncs).values(
            request_id=request_id, asker=asker, producer=producer))
        uow.publish(requested_type(asker), {
            "request_id": request_id, "asker": asker, "producer": producer})
        uow.commit()
    log.info("resync requested", extra={"request_id": request_id, "producer": producer})
    return request_id


# A sweep: remove the rows of one producer's entity not confirmed since `since`; returns
# how many went.
Sweep = Callable[[Session, datetime], int]


def confirm(session: Session, model: Any, key: str) -> None:
    """A snapshot confirms its row (`model`'s `synced_at`) even when it is not newer than
    the row, which a live event's upsert then leaves alone."""
    (pk,) = model.__mapper__.primary_key
    session.execute(update(model).where(pk == key).values(synced_at=func.now()))


def sweeper(model: Any) -> Sweep:
    """The sweep of a read model whose rows have `synced_at` (NULL: from before resyncs)."""

    def sweep(session: Session, since: datetime) -> int:
        gone = session.execute(delete(model).where(
            or_(model.synced_at.is_(None), model.synced_at < since)))
        return int(getattr(gone, "rowcount", 0) or 0)

    return sweep


def completing(sweeps: Mapping[str, Sweep]) -> dict[str, Handler]:
    """The asker's handlers of `<producer>.resync.completed`, one per producer it asks."""

    def on_completed(uow: UnitOfWork, event: Event[ResyncCompleted]) -> None:
        producer = event.type.split(".", 1)[0]
        resyncs = uow.db.resyncs
        asked = uow.session.execute(
            select(resyncs.c.requested_at, resyncs.c.completed_at)
            .where(resyncs.c.request_id == event.data.request_id,
                   resyncs.c.producer == producer)
            .with_for_update()).first()
        if asked is None or asked.completed_at is not None:
            log.warning("resync completion for no open request", extra={
                "request_id": event.data.request_id, "producer": producer})
            return
        removed = sweeps[producer](uow.session, asked.requested_at)
        uow.session.execute(update(resyncs).where(
            resyncs.c.request_id == event.data.request_id).values(
            completed_at=func.now(), sent=event.data.count, removed=removed))
        log.info("resync completed", extra={
            "request_id": event.data.request_id, "producer": producer,
            "snapshots": event.data.count, "stale_removed": removed})

    reads = ("request_id", "count")
    return {completed_type(p): each(on_completed, reads=reads) for p in sweeps}


# -- the producer ---------------------------------------------------------------------

def answering(producer: str, askers: Sequence[str]) -> dict[str, Handler]:
    """The producer's handlers of `<asker>.resync.requested`: record a request meant for it
    (the answer loop takes it from there); a request to another producer is not ours."""

    def on_requested(uow: UnitOfWork, event: Event[ResyncRequested]) -> None:
        if event.data.producer != producer:
            return
        uow.session.execute(insert(uow.db.resyncs).values(
            request_id=event.data.request_id, asker=event.data.asker,
            producer=producer).on_conflict_do_nothing())
        log.info("resync request received", extra={
            "request_id": event.data.request_id, "asker": event.data.asker})

    reads = ("request_id", "asker", "producer")
    return {requested_type(a): each(on_requested, reads=reads) for a in askers}


# A page of the producer's entity after `cursor` (None: from the start), in key order:
# each row's key and its snapshot payload.
ReadPage = Callable[[Session, str | None, int], list[tuple[str, dict[str, Any]]]]


@dataclass(frozen=True)
class Source:
    """What a producer answers with: its entity's snapshot type and how to page it."""

    type: str
    read: ReadPage


class Answerer:
    """The producer's answer loop (a worker loop): one batch of snapshots per transaction
    for the oldest open request, until none is left; then it looks again every `idle_s`."""

    def __init__(self, service: str, source: Source, *, batch: int | None = None,
                 idle_s: float = 1.0, pulse: Pulse | None = None) -> None:
        self.service = service
        self.source = source
        self.pulse = pulse or Pulse("resync-answers")
        # Rows per transaction: short enough to hold no lock for long (auth's page is read
        # FOR SHARE), long enough that a round trip per batch costs nothing.
        self.batch = batch or env_int("RESYNC_BATCH", 500)
        self.idle_s = idle_s

    def step(self, db: Database) -> bool:
        """Answer one batch; False when no request is open."""
        resyncs = db.resyncs
        with UnitOfWork(db, source=self.service) as uow:
            job = uow.session.execute(
                select(resyncs).where(resyncs.c.producer == self.service,
                                      resyncs.c.asker != self.service,
                                      resyncs.c.completed_at.is_(None))
                .order_by(resyncs.c.requested_at).limit(1)
                .with_for_update(skip_locked=True)).first()
            if job is None:
                return False
            page = self.source.read(uow.session, job.cursor, self.batch)
            key = bus.addressed_key(job.asker, self.source.type)
            for _, payload in page:
                uow.publish(self.source.type, payload, routing_key=key)
            sent = job.sent + len(page)
            values: dict[str, Any] = {"sent": sent,
                                      "cursor": page[-1][0] if page else job.cursor}
            if len(page) < self.batch:
                done = completed_type(self.service)
                uow.publish(done, {"request_id": job.request_id, "asker": job.asker,
                                   "count": sent},
                            routing_key=bus.addressed_key(job.asker, done))
                values["completed_at"] = func.now()
            uow.session.execute(update(resyncs).where(
                resyncs.c.request_id == job.request_id).values(**values))
            uow.commit()
        if "completed_at" in values:
            log.info("resync answered", extra={"request_id": job.request_id,
                                                "asker": job.asker, "snapshots": sent})
        return True

    def run(self, settings: Settings, db: Database, stop: threading.Event) -> None:
        """Until `stop`: answer while there is work, look every `idle_s` when there is
        none, wait out database outages (shared.retry's loop)."""

        def answer(backoff: Backoff) -> None:
            while not stop.is_set():
                worked = self.step(db)
                backoff.reset()
                self.pulse.up()
                if not worked:
                    stop.wait(self.idle_s)

        keep_running(answer, stop, what="resync answers", pulse=self.pulse)

    @staticmethod
    def backlog(db: Database) -> dict[str, float]:
        """Resyncs asked of this service (its schema's name) not answered to the end yet,
        for the worker's health."""
        resyncs = db.resyncs
        with db.engine.connect() as conn:
            pending = conn.execute(select(func.count()).select_from(resyncs).where(
                resyncs.c.producer == db.schema, resyncs.c.asker != db.schema,
                resyncs.c.completed_at.is_(None))).scalar()
        return {"resync_answers_open": float(pending or 0)}


# -- the command ----------------------------------------------------------------------

def _status(db: Database, asker: str, request_id: str | None = None) -> list[Any]:
    """The resyncs `asker` asked for, oldest first (or just `request_id`)."""
    resyncs = db.resyncs
    query = select(resyncs).where(resyncs.c.asker == asker)
    if request_id is not None:
        query = query.where(resyncs.c.request_id == request_id)
    with db.engine.connect() as conn:
        return list(conn.execute(query.order_by(resyncs.c.requested_at)))


def _show(row: Any) -> str:
    state = (f"completed {row.completed_at:%Y-%m-%d %H:%M:%S} with {row.sent} snapshots, "
             f"{row.removed} stale rows removed" if row.completed_at else "in progress")
    return (f"{row.request_id} from {row.producer}, asked {row.requested_at:%Y-%m-%d %H:%M:%S}"
            f": {state}")


def main(argv: list[str] | None = None) -> int:
    """`python -m shared.resync request --service stories --from goals [--wait S]`, or
    `status --service stories`."""
    load_env_file()
    parser = argparse.ArgumentParser(prog="python -m shared.resync")
    parser.add_argument("command", choices=["request", "status"])
    parser.add_argument("--service", required=True, choices=sorted(SOURCES))
    parser.add_argument("--from", dest="producer")
    parser.add_argument("--wait", type=float, default=0.0,
                        help="seconds to wait for the completion (0: do not wait)")
    args = parser.parse_args(argv)
    settings = Settings.from_env(args.service)
    db = Database(settings.database_url, args.service, pool_size=1)
    try:
        if args.command == "status":
            for row in _status(db, args.service):
                print(_show(row))
            return 0
        if args.producer not in SOURCES[args.service]:
            parser.error(f"--from: one of {', '.join(SOURCES[args.service])}")
        request_id = request(db, asker=args.service, producer=args.producer)
        print(f"resync {request_id}: {args.service} asked {args.producer} for its state")
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:
            (row,) = _status(db, args.service, request_id)
            if row.completed_at is not None:
                print(_show(row))
                return 0
            time.sleep(0.5)
        if args.wait:
            print(f"resync {request_id}: not completed after {args.wait:g}s (the workers of "
                  f"{args.service} and {args.producer} must be running); "
                  f"`make resync-status SERVICE={args.service}` shows it")
            return 1
        return 0
    finally:
        db.dispose()


if __name__ == "__main__":
    raise SystemExit(main())
