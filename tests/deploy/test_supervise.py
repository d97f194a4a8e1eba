"""deploy/supervise.py, which the runner starts each worker under: a child that dies is
started again within seconds, a child that keeps dying waits longer each time, a stop is
passed on and waited for, and a killed supervisor takes its child with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local import children, running
from tests.helpers import wait_for

SUPERVISE = Path(__file__).resolve().parents[2] / "deploy" / "supervise.py"

# A stand-in worker: records its pid, finishes on TERM (noting it), or exits at once with
# the code given.
CHILD = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    out = Path(sys.argv[1])
    with out.open("a") as f:
        f.write(f"start {os.getpid()}\\n")
    def stop(*_):
        with out.open("a") as f:
            f.write(f"term {os.getpid()}\\n")
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    if len(sys.argv) > 2:
        sys.exit(int(sys.argv[2]))
    while True:
        time.sleep(0.05)
""")


class Supervised:
    def __init__(self, tmp: Path, *child_args: str, stable: float = 10.0) -> None:
        self.record = tmp / "child.txt"
        script = tmp / "child.py"
        script.write_text(CHILD)
        self.stderr = tmp / "supervise.log"
        with self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(SUPERVISE), "--name", "probe-worker", "--stable",
                 str(stable), "--", sys.executable, str(script), str(self.record),
                 *child_args], stderr=err, start_new_session=True)

    def lines(self, kind: str) -> list[int]:
        if not self.record.exists():
            return []
        return [int(pid) for word, pid in (line.split() for line in
                self.record.read_text().splitlines()) if word == kind]

    def logged(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.stderr.read_text().splitlines() if line]

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[list[Supervised]]:
    made: list[Supervised] = []
    yield made
    for s in made:
        s.close()


def test_a_killed_child_is_started_again_within_seconds(
        tmp_path: Path, supervised: list[Supervised]) -> None:
    s = Supervised(tmp_path)
    supervised.append(s)
    first = wait_for(lambda: s.lines("start"), message="the child started")[0]
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: len(s.lines("start")) == 2, timeout=5,
             message="the child started again within 5 s")
    starts = s.lines("start")
    assert starts[1] != first and running(starts[1])
    restart = [line for line in s.logged() if line["message"] == "exited, restarting"]
    assert restart and restart[0]["exit_status"] == 128 + signal.SIGKILL
    assert s.proc.poll() is None, "the supervisor keeps running"


def test_a_stop_is_passed_on_and_waited_for_and_nothing_is_restarted(
        tmp_path: Path, supervised: list[Supervised]) -> None:
    s = Supervised(tmp_path)
    supervised.append(s)
    child = wait_for(lambda: s.lines("start"), message="the child started")[0]
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(10) == 0, "the child's own status"
    assert s.lines("term") == [child], "the child got the TERM and finished"
    assert s.lines("start") == [child], "a stopped child is not started again"


def test_a_child_that_keeps_dying_waits_longer_each_time(
        tmp_path: Path, supervised: list[Supervised]) -> None:
    s = Supervised(tmp_path, "3")
    supervised.append(s)
    wait_for(lambda: len(s.lines("start")) >= 3, timeout=10, message="three quick deaths")
    delays = [line["restart_in_s"] for line in s.logged()
              if line["message"] == "exited, restarting"]
    assert delays[:2] == [1.0, 2.0]
    assert all(line["exit_status"] == 3 for line in s.logged()
               if line["message"] == "exited, restarting")


def test_a_killed_supervisor_takes_its_child_with_it(
        tmp_path: Path, supervised: list[Supervised]) -> None:
    s = Supervised(tmp_path)
    supervised.append(s)
    child = wait_for(lambda: s.lines("start"), message="the child started")[0]
    assert child in children(s.proc.pid)
    s.proc.kill()
    s.proc.wait(10)
    wait_for(lambda: s.lines("term") == [child], timeout=5,
             message="the orphan got TERM from the kernel")
    wait_for(lambda: not running(child), timeout=5, message="the orphan gone")
