"""Asking for a story, the daily limit, and the worker's side of writing it (use cases and
HTTP against the real database; the worker process itself is in test_generation_worker)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from services.stories import usecases
from services.stories.generators import GenerationFailed, StoryRequest
from services.stories.generators.openai import UNAVAILABLE, OpenAIGenerator
from services.stories.generators.template import TemplateGenerator
from services.stories.handlers import HANDLERS
from services.stories.models import GenerationCount, Story
from services.stories.settings import GeneratorSettings
from shared.db import Database, UnitOfWork
from shared.errors import Invalid, TooManyRequests
from shared.events import StoryRequested, parse_event
from shared.ids import new_id
from tests.helpers import apply_events, at_once, event, make_consumer, new_user_id
from tests.stories.fake_llm import FakeLLM, Step
from tests.stories.test_read_models import goal_event, post_event

Client = Callable[[str], Any]
NOW = datetime(2026, 12, 1, 11, 30, tzinfo=UTC)
TODAY = NOW.date()


@pytest.fixture
def db(dbs: Callable[[str], Database]) -> Database:
    return dbs("stories")


def uow(db: Database) -> UnitOfWork:
    return UnitOfWork(db, source="/tests")


def request(db: Database, user_id: str, period: str, *, limit: int = 5,
            now: datetime = NOW) -> Story:
    return usecases.request_story(uow(db), user_id=user_id, period=period, daily_limit=limit,
                                  clock=lambda: now)


def used(db: Database, user_id: str, day: date = TODAY) -> int:
    with db.sessions() as session:
        return session.scalar(select(GenerationCount.n).where(
            GenerationCount.user_id == user_id, GenerationCount.day == day)) or 0


def job_of(db: Database, story_id: str) -> StoryRequested:
    """The generation job the request committed to the outbox (the newest for the story)."""
    outbox = db.outbox.c
    with db.sessions() as session:
        payload = session.scalar(
            select(outbox.payload).where(outbox.type == "stories.generation.requested",
                                         outbox.payload["data"]["story_id"].astext == story_id)
            .order_by(outbox.seq.desc()).limit(1))
    job = parse_event(dict(payload or {})).data
    assert isinstance(job, StoryRequested)
    return job


def generated_events(db: Database, story_id: str) -> int:
    outbox = db.outbox.c
    with db.sessions() as session:
        return session.scalar(select(func.count()).where(
            outbox.type == "stories.story.generated",
            outbox.payload["data"]["story_id"].astext == story_id)) or 0


def stored(db: Database, story_id: str) -> Story | None:
    with db.sessions() as session:
        return session.get(Story, story_id)


class Failing:
    def write(self, request: StoryRequest) -> str:
        raise GenerationFailed("The story writer is unavailable right now.")


# -- asking -----------------------------------------------------------------------------

def test_asking_answers_202_pending_with_its_location(client: Client, auth_header: Any) -> None:
    headers = auth_header(new_user_id())
    answer = client("stories").post("/stories/generate", json={"period": "2026-W48"},
                                    headers=headers)
    assert answer.status_code == 202, answer.json
    story = answer.json
    assert answer.headers["Location"] == "/stories/2026-W48"
    assert (story["status"], story["periodKind"], story["content"], story["error"],
            story["generatedAt"]) == ("PENDING", "WEEK", None, None, None)
    assert (story["periodStart"], story["periodEnd"]) == (
        "2026-11-23T00:00:00+00:00", "2026-11-30T00:00:00+00:00")
    assert client("stories").get("/stories/2026-W48", headers=headers).json == story


def test_asking_again_while_pending_returns_the_same_story_at_no_cost(db: Database) -> None:
    user_id = new_user_id()
    first = request(db, user_id, "2026-11")
    again = request(db, user_id, "2026-11", limit=1)
    assert (again.id, again.generation_id, again.status) == (first.id, first.generation_id,
                                                             "PENDING")
    assert used(db, user_id) == 1


def test_the_worker_writes_the_story_ready_and_announces_it(db: Database) -> None:
    user_id = new_user_id()
    story = request(db, user_id, "2026-W48")
    job = job_of(db, story.id)
    assert usecases.write_story(uow(db), job=job, generator=TemplateGenerator()) == "READY"
    written = stored(db, story.id)
    assert written is not None and written.status == "READY" and written.generated_at
    assert written.content and "Nothing was completed" in written.content
    assert written.updated_at > story.updated_at
    # Redelivered: nothing written twice, nothing announced twice.
    assert usecases.write_story(uow(db), job=job, generator=TemplateGenerator()) is None
    assert generated_events(db, story.id) == 1 and used(db, user_id) == 1


def test_the_database_work_is_inside_the_gate_and_the_models_call_outside_it(
        db: Database) -> None:
    """The worker bounds how many generations use the database at once (its gate): the
    facts are read and the story recorded holding it, the model is called without it."""
    held: list[str] = []

    class Gate:
        def __init__(self) -> None:
            self.inside = False

        def __enter__(self) -> None:
            assert not self.inside, "the gate is entered once at a time, never nested"
            self.inside = True
            held.append("enter")

        def __exit__(self, *_: Any) -> None:
            self.inside = False
            held.append("exit")

    gate = Gate()

    class Watching(TemplateGenerator):
        def write(self, request: StoryRequest) -> str:
            held.append("model, gate held" if gate.inside else "model, gate free")
            return super().write(request)

    story = request(db, new_user_id(), "2026-W47")
    assert usecases.write_story(uow(db), job=job_of(db, story.id), generator=Watching(),
                                gate=gate) == "READY"
    assert held == ["enter", "exit", "model, gate free", "enter", "exit"]


def test_the_story_draws_on_that_users_goals_and_posts_of_that_period(
        db: Database, settings: Any) -> None:
    user_id, someone = new_user_id(), new_user_id()
    consumer = make_consumer(settings("stories"), db, HANDLERS)
    mine, done, old = new_id(), new_id(), new_id()
    apply_events(
        consumer,
        event("auth.user.registered", user_id=user_id, name="Ada",
              target_skills=["mentoring"]),
        goal_event("goals.goal.created", mine, user_id, 1, title="Write the RFC"),
        goal_event("goals.goal.created", done, user_id, 1, title="Fix the build"),
        goal_event("goals.goal.completed", done, user_id, 2,
                   completed_at=datetime(2026, 11, 25, tzinfo=UTC)),
        goal_event("goals.goal.created", old, user_id, 1, title="Last year's goal",
                   start_date=datetime(2025, 1, 1, tzinfo=UTC),
                   deadline=datetime(2025, 1, 7, tzinfo=UTC)),
        goal_event("goals.goal.created", new_id(), someone, 1, title="Not mine"),
        event("diary.post.published", post_id=new_id(), author_id=user_id,
              title="Week 48 notes", published_at=datetime(2026, 11, 27, tzinfo=UTC)),
        post_event("diary.post.published", new_id(), user_id, title="Published today"),
    )
    story = request(db, user_id, "2026-W48")
    usecases.write_story(uow(db), job=job_of(db, story.id), generator=TemplateGenerator())
    content = str(getattr(stored(db, story.id), "content", ""))
    assert "Ada" in content and "\u201cFix the build\u201d" in content
    assert "\u201cWrite the RFC\u201d (due 29 November 2026)" in content
    assert "mentoring" in content and "\u201cWeek 48 notes\u201d" in content
    assert "Not mine" not in content and "Last year" not in content
    assert "Published today" not in content


def test_asking_for_a_story_that_exists_writes_it_afresh_and_counts(db: Database) -> None:
    user_id = new_user_id()
    story = request(db, user_id, "2026-11-30")
    usecases.write_story(uow(db), job=job_of(db, story.id), generator=TemplateGenerator())
    again = request(db, user_id, "2026-11-30")
    assert again.id == story.id and again.generation_id != story.generation_id
    assert (again.status, again.content, again.generated_at) == ("PENDING", None, None)
    assert used(db, user_id) == 2
    # The first job, delivered late, writes nothing over the new request.
    assert usecases.write_story(uow(db), job=StoryRequested(
        story.id, user_id, story.period, story.generation_id or ""),
        generator=TemplateGenerator()) is None


def test_a_failed_generation_gives_its_slot_back(db: Database) -> None:
    user_id = new_user_id()
    story = request(db, user_id, "2026-W47")
    assert used(db, user_id) == 1
    assert usecases.write_story(uow(db), job=job_of(db, story.id), generator=Failing()) == "FAILED"
    failed = stored(db, story.id)
    assert failed is not None and failed.error == "The story writer is unavailable right now."
    assert used(db, user_id) == 0 and generated_events(db, story.id) == 0


def test_a_model_failing_until_its_deadline_fails_the_story_and_refunds(db: Database) -> None:
    user_id = new_user_id()
    story = request(db, user_id, "2026-W46")
    generator = OpenAIGenerator(GeneratorSettings(
        kind="openai", base_url="", deadline_s=0.5, max_attempts=100, backoff_s=0.05))
    with FakeLLM(Step(status=500)) as llm:
        generator.url = f"{llm.url}/chat/completions"
        usecases.write_story(uow(db), job=job_of(db, story.id), generator=generator)
    failed = stored(db, story.id)
    assert failed is not None and (failed.status, failed.error) == ("FAILED", UNAVAILABLE)
    assert used(db, user_id) == 0 and llm.calls > 1


def test_a_generation_that_never_finishes_is_failed_and_refunded_after_its_deadline(
        db: Database) -> None:
    user_id = new_user_id()
    story = request(db, user_id, "2026-W45", now=datetime.now(UTC) - timedelta(minutes=11))
    assert usecases.fail_overdue(uow(db), older_than=timedelta(minutes=10)) >= 1
    failed = stored(db, story.id)
    assert failed is not None and failed.status == "FAILED"
    assert failed.error == usecases.TOO_LONG
    assert used(db, user_id, (datetime.now(UTC) - timedelta(minutes=11)).date()) == 0
    # Its job, delivered at last, writes nothing.
    assert usecases.write_story(uow(db), job=job_of(db, story.id),
                                generator=TemplateGenerator()) is None


# -- the daily limit ----------------------------------------------------------------------

def test_twenty_concurrent_requests_at_limit_five_admit_exactly_five(
        client: Client, auth_header: Any, dbs: Any) -> None:
    user_id = new_user_id()
    headers = auth_header(user_id)
    answers: dict[int, Any] = {}  # n -> the test client's response

    def ask(n: int) -> None:
        answers[n] = client("stories").post(
            "/stories/generate", json={"period": f"2026-11-{n + 1:02d}"}, headers=headers)

    assert at_once(20, ask) == []
    statuses = sorted(a.status_code for a in answers.values())
    assert statuses == [202] * 5 + [429] * 15
    refused = next(a for a in answers.values() if a.status_code == 429)
    assert refused.mimetype == "application/problem+json"
    left = int(refused.headers["Retry-After"])
    now = datetime.now(UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    assert abs(left - (midnight - now).total_seconds()) < 60
    assert used(dbs("stories"), user_id, now.date()) == 5
    with dbs("stories").sessions() as session:
        assert session.scalar(select(func.count()).where(Story.user_id == user_id)) == 5


def test_the_count_starts_again_at_the_utc_day_boundary(db: Database) -> None:
    user_id = new_user_id()
    before = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
    request(db, user_id, "2026-11-01", limit=2, now=before)
    request(db, user_id, "2026-11-02", limit=2, now=before)
    with pytest.raises(TooManyRequests) as refused:
        request(db, user_id, "2026-11-03", limit=2, now=before)
    assert refused.value.retry_after == 1
    midnight = datetime(2026, 12, 1, tzinfo=UTC)
    assert request(db, user_id, "2026-11-03", limit=2, now=midnight).status == "PENDING"
    assert (used(db, user_id, before.date()), used(db, user_id, midnight.date())) == (2, 1)
    # A failure refunds the day that admitted it, not the day it fails on.
    story = request(db, user_id, "2026-11-04", limit=2, now=midnight)
    usecases.write_story(uow(db), job=job_of(db, story.id), generator=Failing())
    assert used(db, user_id, midnight.date()) == 1


def test_limit_zero_admits_nothing(db: Database) -> None:
    with pytest.raises(TooManyRequests):
        request(db, new_user_id(), "2026-11-05", limit=0)


# -- input, ownership, deletion -------------------------------------------------------------

@pytest.mark.parametrize("body", [{}, {"period": "2026-13"}, {"period": "2026-02-30"},
                                  {"period": "2025-W53"}, {"period": "2099"},
                                  {"period": 2026}, {"period": None}, {"period": "x" * 5000}])
def test_a_bad_or_future_period_is_a_422_naming_the_field(client: Client, auth_header: Any,
                                                          body: dict[str, Any]) -> None:
    answer = client("stories").post("/stories/generate", json=body,
                                    headers=auth_header(new_user_id()))
    assert answer.status_code == 422, answer.json
    assert answer.mimetype == "application/problem+json"
    assert "period" in str(answer.json.get("errors")), answer.json


def test_the_future_is_refused_by_the_use_case_too(db: Database) -> None:
    with pytest.raises(Invalid) as refused:
        request(db, new_user_id(), "2026-12-02")
    assert "not started" in str(refused.value.extra["errors"])


def test_only_the_owner_sees_or_deletes_a_story(client: Client, auth_header: Any,
                                                db: Database) -> None:
    owner, other = auth_header(new_user_id()), auth_header(new_user_id())
    stories = client("stories")
    assert stories.post("/stories/generate", json={"period": "2026-10"},
                        headers=owner).status_code == 202
    assert stories.get("/stories/2026-10", headers=other).status_code == 404
    assert stories.delete("/stories/2026-10", headers=other).status_code == 404
    assert stories.get("/stories", headers=other).json["items"] == []
    assert stories.get("/stories/2026-10", headers=owner).status_code == 200
    assert stories.get("/stories/not-a-period", headers=owner).status_code == 404
    assert stories.delete("/stories/2026-10", headers=owner).status_code == 204
    assert stories.get("/stories/2026-10", headers=owner).status_code == 404
    assert stories.delete("/stories/2026-10", headers=owner).status_code == 404


def test_every_route_needs_a_valid_token(client: Client, make_token: Any) -> None:
    stories = client("stories")
    expired = {"Authorization": f"Bearer {make_token(new_user_id(), ttl=-60)}"}
    for headers in ({}, {"Authorization": "Bearer garbage"}, expired):
        assert stories.get("/stories", headers=headers).status_code == 401
        assert stories.get("/stories/2026", headers=headers).status_code == 401
        assert stories.delete("/stories/2026", headers=headers).status_code == 401
        assert stories.post("/stories/generate", json={"period": "2026"},
                            headers=headers).status_code == 401
        assert stories.post("/stories/generate", json={"period": "nope"},
                            headers=headers).status_code == 401


def test_deleting_a_story_announces_it(db: Database) -> None:
    user_id = new_user_id()
    story = request(db, user_id, "2026-Q3")
    usecases.delete_story(uow(db), user_id=user_id, period="2026-Q3")
    outbox = db.outbox.c
    with db.sessions() as session:
        payload: dict[str, Any] = session.scalar(select(outbox.payload).where(
            outbox.type == "stories.story.deleted",
            outbox.payload["data"]["story_id"].astext == story.id)) or {}
    assert payload["data"]["period"] == "2026-Q3" and payload["subject"] == user_id
    assert usecases.write_story(uow(db), job=job_of(db, story.id),
                                generator=TemplateGenerator()) is None


def test_a_user_deleted_while_their_story_is_written_leaves_nothing_behind(
        db: Database, settings: Any) -> None:
    user_id = new_user_id()
    consumer = make_consumer(settings("stories"), db, HANDLERS)
    apply_events(consumer, event("auth.user.registered", user_id=user_id, name="Leaver"))
    story = request(db, user_id, "2026-W44")
    deleted = threading.Event()

    class DeletedMeanwhile:
        def write(self, request: StoryRequest) -> str:
            apply_events(consumer, event("auth.user.deleted", user_id=user_id,
                                         deleted_at=datetime.now(UTC)))
            deleted.set()
            return "A story nobody will read."

    assert usecases.write_story(uow(db), job=job_of(db, story.id),
                                generator=DeletedMeanwhile()) is None
    assert deleted.is_set()
    assert stored(db, story.id) is None and generated_events(db, story.id) == 0
    with db.sessions() as session:
        assert session.scalar(select(func.count()).where(
            GenerationCount.user_id == user_id)) == 0


def test_a_story_asked_for_after_its_user_was_forgotten_is_never_written(
        db: Database) -> None:
    """A request that raced the deletion (its token still honoured for a moment)."""
    user_id = new_user_id()
    story = request(db, user_id, "2026-W43")
    with db.sessions.begin() as session:
        session.execute(db.tombstones.insert().values(user_id=user_id))
    assert usecases.write_story(uow(db), job=job_of(db, story.id),
                                generator=TemplateGenerator()) is None
    usecases.fail_overdue(uow(db), older_than=timedelta(minutes=10))
    assert stored(db, story.id) is None
