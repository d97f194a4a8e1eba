from services.auth.models import Base
from shared.alembic_env import run

run(Base.metadata)
