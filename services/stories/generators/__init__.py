"""Story generators: a story request in (the user's profile, the goals and posts of one
period), text out. `STORY_GENERATOR` chooses one: `template` (embedded, no network) or
`openai` (any OpenAI-compatible chat completions endpoint).

A generator that cannot write the story raises `GenerationFailed` with a short reason a
person can read; that reason is what the story's `error` says, so it never holds a stack
trace, a key or the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from services.stories.periods import Period
from services.stories.settings import GeneratorSettings


class GenerationFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ProfileFacts:
    name: str | None = None
    current_role: str | None = None
    experience_level: str | None = None
    industry: str | None = None
    years_of_experience: int | None = None
    current_skills: list[str] = field(default_factory=list)
    target_skills: list[str] = field(default_factory=list)
    bio: str | None = None
    current_goals: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GoalFacts:
    title: str
    period: str  # the goal's own period: DAILY ... YEARLY
    status: str  # ACTIVE | COMPLETED
    start_date: datetime | None
    deadline: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True)
class PostFacts:
    title: str
    published_at: datetime | None


@dataclass(frozen=True)
class StoryRequest:
    """What one user did in one period: all a generator may draw on."""

    period: Period
    profile: ProfileFacts
    completed: list[GoalFacts]  # completed within the period
    started: list[GoalFacts]  # set (started) within the period
    still_open: list[GoalFacts]  # active during the period, not completed
    posts: list[PostFacts]  # published within the period

    @property
    def empty(self) -> bool:
        return not (self.completed or self.started or self.still_open or self.posts)


class StoryGenerator(Protocol):
    def write(self, request: StoryRequest) -> str: ...


def make_generator(settings: GeneratorSettings) -> StoryGenerator:
    if settings.kind == "template":
        from services.stories.generators.template import TemplateGenerator

        return TemplateGenerator()
    if settings.kind == "openai":
        from services.stories.generators.openai import OpenAIGenerator

        return OpenAIGenerator(settings)
    raise ValueError(f"STORY_GENERATOR must be template or openai, not {settings.kind!r}")
