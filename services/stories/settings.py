"""Stories' configuration: read from the environment once per process (in `create_app` and
in the worker's main) and passed in. Each variable, with its default, is in the README."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from shared.config import env, env_int


@dataclass(frozen=True)
class GeneratorSettings:
    kind: str = "template"  # STORY_GENERATOR: template | openai
    base_url: str = "http://localhost:11434/v1"  # STORY_LLM_BASE_URL (Ollama's, by default)
    model: str = "llama3.2"  # STORY_LLM_MODEL
    api_key: str = field(default="", repr=False)  # STORY_LLM_API_KEY: empty sends none
    timeout_s: float = 60.0  # STORY_LLM_TIMEOUT_SECONDS: one call
    deadline_s: float = 180.0  # STORY_LLM_DEADLINE_SECONDS: all attempts of one story
    max_attempts: int = 4  # STORY_LLM_MAX_ATTEMPTS
    backoff_s: float = 1.0  # STORY_LLM_BACKOFF_SECONDS: first retry's wait, doubling
    max_tokens: int = 800  # STORY_LLM_MAX_TOKENS: asked of the model
    max_chars: int = 6000  # STORY_MAX_CHARS: a longer answer is cut at a sentence
    concurrency: int = 4  # STORY_LLM_CONCURRENCY: generations in flight per worker

    @classmethod
    def from_env(cls) -> GeneratorSettings:
        return cls(
            kind=env("STORY_GENERATOR", cls.kind),
            base_url=env("STORY_LLM_BASE_URL", cls.base_url).rstrip("/"),
            model=env("STORY_LLM_MODEL", cls.model),
            api_key=env("STORY_LLM_API_KEY", ""),
            timeout_s=float(env("STORY_LLM_TIMEOUT_SECONDS", str(cls.timeout_s))),
            deadline_s=float(env("STORY_LLM_DEADLINE_SECONDS", str(cls.deadline_s))),
            max_attempts=env_int("STORY_LLM_MAX_ATTEMPTS", cls.max_attempts),
            backoff_s=float(env("STORY_LLM_BACKOFF_SECONDS", str(cls.backoff_s))),
            max_tokens=env_int("STORY_LLM_MAX_TOKENS", cls.max_tokens),
            max_chars=env_int("STORY_MAX_CHARS", cls.max_chars),
            concurrency=max(1, env_int("STORY_LLM_CONCURRENCY", cls.concurrency)),
        )


@dataclass(frozen=True)
class StoriesSettings:
    daily_limit: int = 5  # STORIES_DAILY_LIMIT: generations per user per UTC day
    # STORY_PENDING_DEADLINE_SECONDS: a story still PENDING this long after its request is
    # written FAILED and refunded by the worker's sweeper (longer than the model's deadline).
    pending_deadline_s: int = 600
    sweep_interval_s: float = 30.0  # STORY_SWEEP_INTERVAL_SECONDS
    # STORY_RECORD_CONCURRENCY: generations reading their facts or recording their story at
    # once, per worker (the model calls in flight are STORY_LLM_CONCURRENCY's).
    record_concurrency: int = 2
    # STORY_GENERATION_NICE: how much nicer the generation threads are than the worker's
    # others (0-19, as `nice -n`; Linux schedules threads one by one).
    # When the machine is busy, what a generation reads, writes and sends waits for the
    # requests and events, not the other way round; an idle machine runs it at once.
    generation_nice: int = 10
    # STORY_WORKER_SWITCH_INTERVAL_MS: how long a thread may hold the interpreter while
    # another waits for it (Python's default is 5 ms). The event consumer gives the
    # interpreter up at every database round trip; with generation threads busy it would
    # otherwise wait up to that long to take it back, each time.
    switch_interval_ms: float = 1.0
    generator: GeneratorSettings = GeneratorSettings()

    @classmethod
    def from_env(cls) -> StoriesSettings:
        return cls(
            daily_limit=env_int("STORIES_DAILY_LIMIT", cls.daily_limit),
            pending_deadline_s=env_int("STORY_PENDING_DEADLINE_SECONDS",
                                       cls.pending_deadline_s),
            sweep_interval_s=float(env("STORY_SWEEP_INTERVAL_SECONDS",
                                       str(cls.sweep_interval_s))),
            record_concurrency=max(1, env_int("STORY_RECORD_CONCURRENCY",
                                              cls.record_concurrency)),
            generation_nice=min(19, max(0, env_int("STORY_GENERATION_NICE",
                                                   cls.generation_nice))),
            switch_interval_ms=max(0.1, float(env("STORY_WORKER_SWITCH_INTERVAL_MS",
                                                  str(cls.switch_interval_ms)))),
            generator=GeneratorSettings.from_env(),
        )


def current_settings() -> StoriesSettings:
    """The settings of the app serving this request (built by `create_app`)."""
    settings: StoriesSettings = current_app.extensions["stories.settings"]
    return settings
