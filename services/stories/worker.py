"""The stories worker: `python -m services.stories.worker`: outbox relay, event consumer
(read models), the generation loop on stories' job queue, and the sweeper."""

import sys

from services.stories.generators import make_generator
from services.stories.handlers import HANDLERS
from services.stories.jobs import Generations, Sweeper, declare_job_queue
from services.stories.settings import StoriesSettings
from shared.config import Settings, load_env_file
from shared.health import Vitals
from shared.worker import run_worker


def main() -> None:
    load_env_file()
    settings = Settings.from_env("stories")
    stories = StoriesSettings.from_env()
    sys.setswitchinterval(stories.switch_interval_ms / 1000)
    declare_job_queue(settings)
    vitals = Vitals(stall_after_s=settings.worker_stall_s)
    generations = Generations(stories, make_generator(stories.generator),
                              pulse=vitals.pulse("generations"))
    run_worker("stories", HANDLERS, settings=settings, vitals=vitals,
               loops=[generations.run, Sweeper(stories).run])


if __name__ == "__main__":
    main()
