"""Diary's post events reach stories through the real relay, broker and consumer."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.stories.models import PostView
from shared import bus
from tests.helpers import PYTHON, ServiceProcess, new_user_id, queue_exists, wait_for

LOGS = Path(os.environ.get("TEST_LOG_DIR", "var/log/tests"))


@pytest.fixture(scope="module")
def workers(infrastructure: dict[str, str]) -> Iterator[list[ServiceProcess]]:
    """A stories worker (consumer) and a diary worker (relay), as deployed."""
    names = bus.Names(os.environ["EVENT_NAMESPACE"])
    procs: list[ServiceProcess] = []
    try:
        for service in ("stories", "diary"):
            proc = ServiceProcess([PYTHON, "-m", f"services.{service}.worker"],
                                  dict(os.environ), LOGS / f"{service}-worker.log").start()
            procs.append(proc)
            queue = names.dead_queue(service)  # declared after its queue and bindings

            def ready(proc: ServiceProcess = proc, queue: str = queue) -> bool:
                return queue_exists(infrastructure["amqp_url"], queue) or not proc.alive()

            # Stories' queue must exist before diary publishes, or the exchange drops events.
            wait_for(ready, timeout=30, message=f"{service} worker ready")
            assert proc.alive(), proc.log_tail()
        yield procs
    finally:
        for proc in procs:
            proc.terminate()


def test_publishing_and_deleting_a_post_reach_the_stories_read_model(
        workers: list[ServiceProcess], client: Callable[[str], Any],
        auth_header: Callable[[str], dict[str, str]], dbs: Callable[[str], Any]) -> None:
    headers = auth_header(new_user_id())
    diary, stories_db = client("diary"), dbs("stories")

    def view(post_id: str) -> PostView | None:
        with stories_db.sessions() as session:
            return session.get(PostView, post_id)

    post = diary.post("/diary/posts", json={"title": "Week 48", "content": "Shipped",
                                            "status": "PUBLISHED"}, headers=headers).json
    seen = wait_for(lambda: view(post["id"]), message="the post in stories' read model")
    assert seen is not None and seen.title == "Week 48"

    assert diary.delete(f"/diary/posts/{post['id']}", headers=headers).status_code == 204
    wait_for(lambda: view(post["id"]) is None, message="the post gone from stories")
    assert all(p.alive() for p in workers), [p.log_tail() for p in workers]
