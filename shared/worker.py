"""A service's worker process: the outbox relay and the event consumer, stopped gracefully.

On SIGTERM both loops finish what they hold: the consumer commits and acks its batch (or
leaves it unacked for redelivery), the relay marks what the broker confirmed. Nothing is lost.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from shared.config import Settings, load_env_file
from shared.consumer import EventConsumer, Handlers
from shared.db import Database
from shared.logs import configure_logging
from shared.outbox import OutboxRelay

log = logging.getLogger(__name__)


def run_worker(
    service: str,
    handlers: Handlers,
    *,
    loops: Sequence[Callable[[Settings, Database, threading.Event], None]] = (),
    settings: Settings | None = None,
) -> None:
    """Relay and consumer, plus any service-specific `loops` (each in its own thread,
    each returning once `stop` is set). `settings`: the ones the service's main built, or
    read here (with `.env`) when it built none."""
    if settings is None:
        load_env_file()
        settings = Settings.from_env(service)
    configure_logging(service, settings.log_level)
    db = Database(settings.database_url, service, pool_size=2)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    relay = OutboxRelay(settings, db)
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
            EventConsumer(settings, db, handlers).run(stop)
        else:
            stop.wait()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        db.dispose()
        log.info("worker stopped")
