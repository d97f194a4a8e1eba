"""Keep one process running: `python3 -m deploy.supervise [--name N] -- ARGV...`.

What the runner starts each worker under, so a worker that dies (a crash, the OOM killer,
a SIGKILL) is back within a second or two instead of staying down until someone runs
`make run`:

- the child runs `ARGV`, with this process's environment, output and working directory;
- when it exits while not told to stop, it is started again after 1 s; a child that keeps
  dying within `--stable` seconds of its start waits twice as long each time (up to 30 s),
  so a broken build does not spin the machine; a start that stays up resets the delay;
- TERM or INT is passed to the child, and this process exits with the child's status once
  it has finished (the worker's own graceful stop); a second TERM is passed on too;
- if this process itself is killed, the kernel TERMs the child (PR_SET_PDEATHSIG), so no
  worker is left running unsupervised.

Hand-written rather than supervisord or circus: this is the one feature the runner lacks
(pid files, logs, readiness and deploys are the runner's already), and it stays standard
library only, as the runner is. A hung worker is not restarted here: its health server
(shared.health) reports it, and whatever probes that (`make status`, Kubernetes' liveness
probe) decides.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from types import FrameType

PR_SET_PDEATHSIG = 1
FIRST_DELAY_S = 1.0
CEILING_S = 30.0


def _die_with_parent() -> None:
    """In the child, before exec: TERM me when the supervisor dies (Linux)."""
    # Not Linux: the child outlives a killed supervisor, as it would without one.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def say(name: str, message: str, **fields: object) -> None:
    """One JSON line, as the services log."""
    line = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "level": "INFO",
            "logger": "deploy.supervise", "service": name, "message": message, **fields}
    print(json.dumps(line), file=sys.stderr, flush=True)


class Supervisor:
    def __init__(self, argv: Sequence[str], *, name: str, stable_s: float = 10.0) -> None:
        self.argv = list(argv)
        self.name = name
        self.stable_s = stable_s
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        delay = FIRST_DELAY_S / 2  # doubled before its first use by a quick death
        while True:
            started = time.monotonic()
            self.child = subprocess.Popen(self.argv, preexec_fn=_die_with_parent)  # noqa: PLW1509
            code = self._wait()
            if self.stopping:
                return code
            ran_for = time.monotonic() - started
            delay = FIRST_DELAY_S if ran_for >= self.stable_s else min(delay * 2, CEILING_S)
            say(self.name, "exited, restarting", exit_status=code,
                ran_for_s=round(ran_for, 1), restart_in_s=delay)
            deadline = time.monotonic() + delay
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.stopping:
                return code

    def _wait(self) -> int:
        assert self.child is not None
        while True:
            try:
                code = self.child.wait()
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue
            # As a shell reports it: a child ended by a signal is 128 + its number.
            return 128 - code if code < 0 else code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m deploy.supervise",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", default="", help="what the log lines call the child")
    parser.add_argument("--stable", type=float, default=10.0,
                        help="seconds up after which a start counts as good (10)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- ARGV...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("nothing to run: give -- ARGV...")
    name = args.name or os.path.basename(command[0])
    return Supervisor(command, name=name, stable_s=args.stable).run()


if __name__ == "__main__":
    sys.exit(main())
