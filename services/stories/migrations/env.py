from services.stories.models import Base
from shared.alembic_env import run

run(Base.metadata)
