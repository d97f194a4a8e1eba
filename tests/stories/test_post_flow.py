"""Diary's post events reach stories through the real relay, broker and consumer."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from services.stories.models import PostView
from tests.helpers import ServiceProcess, new_user_id, start_worker, wait_for


@pytest.fixture(scope="module")
def workers(infrastructure: dict[str, str]) -> Iterator[list[ServiceProcess]]:
    """A stories worker (consumer) and a diary worker (relay), as deployed."""
    procs: list[ServiceProcess] = []
    try:
        # Stories' queue must exist before diary publishes, or the exchange drops events.
        for service in ("stories", "diary"):
            procs.append(start_worker(service, dict(os.environ),
                                      amqp_url=infrastructure["amqp_url"]))
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
