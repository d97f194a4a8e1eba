"""The one reconnect-with-backoff loop: what the relay, the consumer, the mail sender and
the tombstone listener do when the broker or the database goes away."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from shared.health import Pulse

log = logging.getLogger(__name__)


class Backoff:
    """Delays that double after each failure, up to a ceiling; a success resets them."""

    def __init__(self, *, initial: float = 0.5, ceiling: float = 10.0) -> None:
        self.initial = initial
        self.ceiling = ceiling
        self.delay = initial

    def reset(self) -> None:
        self.delay = self.initial

    def wait(self, stop: threading.Event) -> None:
        stop.wait(self.delay)
        self.delay = min(self.delay * 2, self.ceiling)


def keep_running(
    session: Callable[[Backoff], None],
    stop: threading.Event,
    *,
    what: str,
    initial: float = 0.5,
    ceiling: float = 10.0,
    on_failure: Callable[[], None] | None = None,
    pulse: Pulse | None = None,
) -> None:
    """Run `session` until `stop` is set; when it raises, log one warning (no traceback:
    an outage is not a bug) and run it again after a backoff. `session` resets the backoff
    once it is connected, so a long healthy run starts over from a short delay. `pulse`, the
    loop's health (shared.health), is marked down while backing off; the session marks it
    up once connected and beats it on every turn."""
    backoff = Backoff(initial=initial, ceiling=ceiling)
    while not stop.is_set():
        try:
            session(backoff)
        except Exception as exc:  # noqa: BLE001 - any outage: back off and reconnect
            if on_failure is not None:
                on_failure()
            if pulse is not None:
                pulse.down(f"{type(exc).__name__}, retrying in {backoff.delay:g}s")
            if stop.is_set():
                break
            log.warning(f"{what} interrupted, retrying", extra={
                "error": repr(exc), "retry_in_s": backoff.delay})
            backoff.wait(stop)
