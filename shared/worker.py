"""A service's worker process: the outbox relay and the event consumer, stopped gracefully,
with its health and metrics on a port of its own (shared.health).

On SIGTERM both loops finish what they hold: the consumer commits and acks its batch (or
leaves it unacked for redelivery), the relay marks what the broker confirmed. Nothing is lost.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from types import FrameType

from shared import health, tracing
from shared.config import Settings, load_env_file
from shared.consumer import EventConsumer, Handlers
from shared.db import Database
from shared.logs import configure_logging
from shared.outbox import OutboxRelay
from shared.resync import Answerer, Source

log = logging.getLogger(__name__)


def run_worker(
    service: str,
    handlers: Handlers,
    *,
    loops: Sequence[Callable[[Settings, Database, threading.Event], None]] = (),
    settings: Settings | None = None,
    vitals: health.Vitals | None = None,
    backlogs: Sequence[Callable[[Database], Mapping[str, float]]] = (),
    snapshots: Source | None = None,
) -> None:
    """Relay and consumer, plus any service-specific `loops` (each in its own thread,
    each returning once `stop` is set). `settings`: the ones the service's main built, or
    read here (with `.env`) when it built none. `vitals`: the health its loops report to,
    when the service's main made it to hand out pulses of its own; `backlogs`: gauges the
    service adds to the relay's (each reads the database when probed). `snapshots`: what
    the service answers resyncs with (shared.resync), for a producer of read models: its
    answer loop runs beside the others, with its pulse and backlog."""
    if settings is None:
        load_env_file()
        settings = Settings.from_env(service)
    configure_logging(service, settings.log_level)
    db = Database(settings.database_url, service, pool_size=2)
    if tracing.configure(service):  # OTEL_EXPORTER_OTLP_ENDPOINT set
        tracing.instrument_engine(db.engine)
    stop = threading.Event()
    vitals = vitals or health.Vitals(stall_after_s=settings.worker_stall_s)
    if snapshots is not None:
        answers = Answerer(service, snapshots, pulse=vitals.pulse("resync-answers"))
        loops, backlogs = [*loops, answers.run], [*backlogs, Answerer.backlog]

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    relay = OutboxRelay(settings, db, pulse=vitals.pulse("outbox-relay"))
    vitals.backlogs.append(relay.backlog)
    vitals.backlogs += [partial(backlog, db) for backlog in backlogs]
    # Before any loop starts: a port taken by another program ends the worker, loudly.
    server = health.serve(vitals, settings.worker_host, settings.worker_port)
    # Everything loaded so far lives as long as the process: keep the collector off it, so
    # its pauses stay short while events flow.
    gc.freeze()
    threads = [threading.Thread(target=relay.run, args=(stop,), name="outbox-relay")]
    threads += [threading.Thread(target=loop, args=(settings, db, stop), name=loop.__name__)
                for loop in loops]
    for thread in threads:
        thread.start()
    log.info("worker started", extra={"handles": sorted(handlers)})
    try:
        if handlers:
            EventConsumer(settings, db, handlers, pulse=vitals.pulse("consumer")).run(stop)
        else:
            stop.wait()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        server.shutdown()
        server.server_close()
        db.dispose()
        tracing.shutdown()  # the spans still buffered are sent
        log.info("worker stopped")
