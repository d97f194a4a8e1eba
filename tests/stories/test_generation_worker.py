"""The stories worker as deployed, writing stories with the `openai` generator against a
local model server: request to READY, auth's counters following, and a worker killed in
the middle of a generation."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from services.auth.models import User
from services.stories.models import GenerationCount, Story
from shared import bus
from tests.helpers import ServiceProcess, queue_exists, start_worker, wait_for
from tests.stories.fake_llm import FakeLLM, Step

pytestmark = pytest.mark.slow


class Workers:
    def __init__(self, amqp_url: str, llm: FakeLLM) -> None:
        self.amqp_url = amqp_url
        self.names = bus.Names(os.environ["EVENT_NAMESPACE"])
        self.env = {**os.environ, "STORY_GENERATOR": "openai", "STORY_LLM_BASE_URL": llm.url,
                    "STORY_LLM_MODEL": "fake", "STORY_LLM_BACKOFF_SECONDS": "0.1",
                    "STORY_LLM_TIMEOUT_SECONDS": "30", "STORY_LLM_CONCURRENCY": "4"}
        self.auth = self._start("auth")
        self.stories = self.start_stories()

    def _start(self, service: str) -> ServiceProcess:
        return start_worker(service, self.env, amqp_url=self.amqp_url,
                            log_name=f"{service}-generation-worker.log")

    def start_stories(self) -> ServiceProcess:
        self.stories = self._start("stories")
        wait_for(lambda: queue_exists(self.amqp_url, self.names.jobs_queue("stories")),
                 message="stories' job queue")
        return self.stories

    def stop(self) -> None:
        for proc in (self.stories, self.auth):
            proc.terminate()


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM(Step(content="A story.")) as server:
        yield server


@pytest.fixture(scope="module")
def workers(infrastructure: dict[str, str], llm: FakeLLM) -> Iterator[Workers]:
    running = Workers(infrastructure["amqp_url"], llm)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def member(client: Callable[[str], Any], make_token: Callable[..., str]) -> dict[str, str]:
    """A user registered with auth (so auth has counters to move), with a token."""
    email = f"{os.urandom(6).hex()}@example.com"
    answer = client("auth").post("/auth/register", json={
        "email": email, "password": "correct horse battery staple", "name": "Lin"})
    assert answer.status_code == 201, answer.get_json()
    user_id = answer.get_json()["id"]
    return {"id": user_id, "Authorization": f"Bearer {make_token(user_id)}"}


def story(dbs: Any, user_id: str, period: str) -> Story | None:
    with dbs("stories").sessions() as session:
        return session.scalars(select(Story).where(Story.user_id == user_id,
                                                   Story.period == period)).first()


def test_a_story_is_written_ready_and_auth_counts_it(
        workers: Workers, llm: FakeLLM, client: Callable[[str], Any], dbs: Any,
        member: dict[str, str]) -> None:
    llm.script('"id": "2001"', Step(status=429, headers={"Retry-After": "0"}),
               Step(content="Lin had a good year."))
    headers = {"Authorization": member["Authorization"]}
    answer = client("stories").post("/stories/generate", json={"period": "2001"},
                                    headers=headers)
    assert answer.status_code == 202, answer.get_json()

    def ready() -> dict[str, Any] | None:
        body = client("stories").get("/stories/2001", headers=headers).get_json()
        return body if body["status"] != "PENDING" else None

    written = wait_for(ready, timeout=30, message="the story written")
    assert written is not None
    assert (written["status"], written["content"]) == ("READY", "Lin had a good year."), written
    assert written["generatedAt"] and llm.calls_for('"id": "2001"') == 2

    def counted() -> tuple[int, datetime | None] | None:
        with dbs("auth").sessions() as session:
            user = session.get(User, member["id"])
            got = (user.daily_generation_count, user.last_generation_date) if user else None
        return got if got and got[0] == 1 else None

    counts = wait_for(counted, timeout=15, message="auth's dailyGenerationCount")
    assert counts is not None
    last = counts[1]
    assert last is not None and last.astimezone(UTC).date() == datetime.now(UTC).date()
    assert all(p.alive() for p in (workers.auth, workers.stories))


def test_a_worker_killed_mid_generation_is_replaced_and_the_story_finishes(
        workers: Workers, llm: FakeLLM, client: Callable[[str], Any], dbs: Any,
        member: dict[str, str]) -> None:
    marker, held = '"id": "2002-Q2"', threading.Event()
    llm.script(marker, Step(hold=held), Step(content="Written after the restart."))
    headers = {"Authorization": member["Authorization"]}
    try:
        assert client("stories").post("/stories/generate", json={"period": "2002-Q2"},
                                      headers=headers).status_code == 202
        wait_for(lambda: llm.calls_for(marker) == 1, timeout=30,
                 message="the generation in flight")
        workers.stories.kill()  # SIGKILL: no goodbye, the job stays unacked
        workers.start_stories()
        def finished() -> Story | None:
            found = story(dbs, member["id"], "2002-Q2")
            return found if found is not None and found.status != "PENDING" else None

        written = wait_for(finished, timeout=30, message="the story finished by the new worker")
        assert written is not None
        assert (written.status, written.content) == ("READY", "Written after the restart.")
        with dbs("stories").sessions() as session:
            assert session.scalar(select(GenerationCount.n).where(
                GenerationCount.user_id == member["id"])) == 1
    finally:
        held.set()


def _niceness(pid: int) -> dict[int, int]:
    """Each thread of process `pid`: its niceness (field 19 of /proc/<pid>/task/<tid>/stat)."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            stat = (task / "stat").read_text()
            found[int(task.name)] = int(stat.rsplit(")", 1)[1].split()[16])
    return found


@pytest.mark.skipif(sys.platform != "linux", reason="threads have a niceness of their own on Linux")
def test_generations_run_at_a_lower_cpu_priority_than_the_event_consumer(
        workers: Workers, llm: FakeLLM, client: Callable[[str], Any],
        member: dict[str, str]) -> None:
    marker, held = '"id": "2003-W02"', threading.Event()
    llm.script(marker, Step(hold=held), Step(content="Written."))
    try:
        assert client("stories").post("/stories/generate", json={"period": "2003-W02"},
                                      headers={"Authorization": member["Authorization"]}
                                      ).status_code == 202
        wait_for(lambda: llm.calls_for(marker) == 1, timeout=30,
                 message="the generation in flight")
        pid = workers.stories.pid
        threads = _niceness(pid)
        base = threads[pid]  # the main thread: the consumer's and the relay's niceness
        lowered = [tid for tid, nice in threads.items() if nice == min(19, base + 10)]
        # The pool's threads started so far (one per job until it has as many as it may;
        # this one is holding a model call), and none of the others: main, the consumer's,
        # the relay's, the health server's.
        assert lowered and pid not in lowered, threads
        assert len(threads) - len(lowered) >= 3, threads
    finally:
        held.set()
