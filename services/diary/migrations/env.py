from services.diary.models import Base
from shared.alembic_env import run

run(Base.metadata)
