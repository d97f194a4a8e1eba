"""The stories worker's generation loop and sweeper.

Generations arrive as `stories.generation.requested` jobs (committed by the request through
the outbox) on stories' own job queue, apart from its event queue, so slow model calls never
hold up the read models. They run in a thread pool a little larger than
`STORY_LLM_CONCURRENCY` (the generator bounds the model calls themselves to that), at a
lower CPU priority than the worker's other threads (`STORY_GENERATION_NICE`); the
prefetch is the pool's size, so the broker hands out no more than can run. A job is acked once its
story is written (READY or FAILED); a worker that dies first leaves it unacked, and the
broker redelivers it to the next worker, where it is written afresh (idempotent: a job whose
story is no longer pending for it writes nothing). The sweeper fails and refunds stories
pending past `STORY_PENDING_DEADLINE_SECONDS`, so none is left pending for ever.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from kombu import Connection, Consumer
from kombu.message import Message

from services.stories import usecases
from services.stories.generators import StoryGenerator
from services.stories.settings import StoriesSettings
from shared import bus
from shared.config import Settings
from shared.db import Database, UnitOfWork, is_database_outage
from shared.events import InvalidEvent, StoryRequested, parse_event
from shared.health import Pulse
from shared.retry import Backoff, keep_running

log = logging.getLogger(__name__)

JOB = "stories.generation.requested"
STOP_GRACE_S = 20.0  # on SIGTERM, generations in flight get this long to finish


def job_queue(names: bus.Names) -> Any:
    return bus.jobs_queue(names, "stories", [JOB])


def declare_job_queue(settings: Settings) -> None:
    """Before the relay sends a job, its queue must exist (else the exchange drops it)."""
    names = bus.Names(settings.namespace)
    with contextlib.suppress(Exception), Connection(settings.amqp_url,
                                                    connect_timeout=5) as conn:
        conn.ensure_connection(max_retries=1)
        bus.declare(conn.channel(), names, [job_queue(names)])


def lower_priority(by: int) -> None:
    """This thread's CPU niceness raised by `by` (as `nice -n`; Linux schedules threads one
    by one, so the worker's event consumer and relay keep theirs). Elsewhere, as it is."""
    if sys.platform == "linux" and by > 0:
        tid = threading.get_native_id()
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, tid,
                           min(19, os.getpriority(os.PRIO_PROCESS, tid) + by))


class Generations:
    """The generation loop: `run(settings, db, stop)`, one of the worker's loops."""

    def __init__(self, stories: StoriesSettings, generator: StoryGenerator, *,
                 pulse: Pulse | None = None) -> None:
        self.stories = stories
        self.generator = generator
        # The worker's health (shared.health): it turns every 0.1 s, whatever the model does.
        self.pulse = pulse or Pulse("generations")
        self.concurrency = stories.generator.concurrency
        # A few threads beyond the model's slots: a story being read or recorded holds a
        # thread but no model call, so the model stays at `concurrency` calls in flight
        # (the generator's own semaphore is what bounds those).
        self.threads = self.concurrency + max(2, self.concurrency // 4)
        # Reading facts and recording stories, a few at a time: a model answering many calls
        # at once (a fixed latency does that) would otherwise make every thread want the
        # interpreter and the database in the same instant, and the worker's event consumer
        # and the machine's other requests wait that burst out. Queued here, the recordings
        # are spread out, and so are the next calls they start.
        self.gate = threading.BoundedSemaphore(stories.record_concurrency)
        self.written_total = 0
        self._inflight: dict[Future[str | None], Message] = {}
        self._lock = threading.Lock()

    def run(self, settings: Settings, _db: Database, stop: threading.Event) -> None:
        # A pool of its own: generations never wait for the event consumer's connections.
        db = Database(settings.database_url, "stories",
                      pool_size=max(2, min(self.concurrency, 5)))
        pool = ThreadPoolExecutor(self.threads, thread_name_prefix="generation",
                                  initializer=lower_priority,
                                  initargs=(self.stories.generation_nice,))
        names = bus.Names(settings.namespace)

        def session(backoff: Backoff) -> None:
            connection = bus.connect(settings.amqp_url)
            try:
                connection.ensure_connection(max_retries=1)
                channel = connection.channel()
                queue = job_queue(names)
                bus.declare(channel, names, [queue])
                channel.basic_qos(0, self.threads, False)

                def receive(message: Message) -> None:
                    self._start(message, pool, db, stop)

                consumer = Consumer(channel, queues=[queue], on_message=receive,
                                    no_ack=False, accept=None)
                with consumer:
                    backoff.reset()
                    self.pulse.up()
                    log.info("generating", extra={"queue": queue.name,
                                                  "concurrency": self.concurrency})
                    while not stop.is_set():
                        self.pulse.beat()
                        bus.drain_ready(connection, wait=0.1, max_more=self.threads)
                        connection.heartbeat_check()
                        self._settle()
                    consumer.cancel()  # no new jobs; let those in flight finish
                    self._finish(connection, STOP_GRACE_S)
            finally:
                with contextlib.suppress(Exception):
                    connection.release()

        try:
            keep_running(session, stop, what="generation consumer",
                         on_failure=self._forget_acks, pulse=self.pulse)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            db.dispose()

    def _start(self, message: Message, pool: ThreadPoolExecutor, db: Database,
               stop: threading.Event) -> None:
        try:
            envelope = json.loads(message.body)
            event = parse_event(envelope if isinstance(envelope, dict) else {})
            if not isinstance(event.data, StoryRequested):
                raise InvalidEvent(f"not a generation job: {event.type}")
        except (ValueError, InvalidEvent) as exc:
            log.error("malformed generation job", extra={"error": str(exc)})
            message.reject(requeue=False)  # to stories' dead-letter queue
            return
        future = pool.submit(self._write, db, event.data, stop)
        with self._lock:
            self._inflight[future] = message

    def _write(self, db: Database, job: StoryRequested, stop: threading.Event) -> str | None:
        backoff = Backoff(initial=0.5, ceiling=5.0)
        while True:
            try:
                status = usecases.write_story(UnitOfWork(db, source="/stories"), job=job,
                                              generator=self.generator, gate=self.gate)
                self.written_total += 1
                return status
            except Exception as exc:
                if not is_database_outage(exc) or stop.is_set():
                    raise
                log.warning("database unavailable, holding generation",
                            extra={"story_id": job.story_id, "retry_in_s": backoff.delay})
                backoff.wait(stop)

    def _settle(self) -> None:
        """Ack what is written (on the connection's thread: kombu's channels are not
        thread-safe); a job that raised goes back to the queue."""
        with self._lock:
            done = [(f, m) for f, m in self._inflight.items() if f.done()]
            for future, _ in done:
                del self._inflight[future]
        for future, message in done:
            error = future.exception()
            if error is None:
                message.ack()
            else:
                log.error("generation job failed", extra={"error": repr(error)})
                message.reject(requeue=True)

    def _finish(self, connection: Any, grace: float) -> None:
        waited = 0.0
        while self._inflight and waited < grace:
            with contextlib.suppress(TimeoutError):
                connection.drain_events(timeout=0.1)
            self._settle()
            waited += 0.1

    def _forget_acks(self) -> None:
        """The channel is gone: its unacked jobs are redelivered, so acks are moot."""
        with self._lock:
            self._inflight.clear()


class Sweeper:
    """Fails (and refunds) stories pending past their deadline: `run(settings, db, stop)`."""

    def __init__(self, stories: StoriesSettings) -> None:
        self.stories = stories

    def run(self, _settings: Settings, db: Database, stop: threading.Event) -> None:
        older_than = timedelta(seconds=self.stories.pending_deadline_s)
        while not stop.wait(self.stories.sweep_interval_s):
            try:
                failed = usecases.fail_overdue(UnitOfWork(db, source="/stories"),
                                               older_than=older_than)
                if failed:
                    log.warning("pending stories past their deadline failed",
                                extra={"count": failed})
            except Exception as exc:  # noqa: BLE001 - an outage: try again next round
                log.warning("sweep failed", extra={"error": repr(exc)})
