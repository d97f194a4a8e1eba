"""The memory floor of the client's fixed web stack: the same request as GET /goals?limit=20
(a user's 20 newest goals, read through a SQLAlchemy ORM session over psycopg, dumped by a
marshmallow schema through a flask-smorest blueprint) with nothing else: no service code, no
tokens, metrics, logging or tracing. bench/http.py serves it with gunicorn (preload, as ours)
and reads its workers' RSS beside ours, so the RSS target is read against what these
libraries alone hold in a worker on this machine.

    FLOOR_DATABASE_URL=postgresql+psycopg://... gunicorn --preload bench.floor_app:app

It imports only flask, flask-smorest, marshmallow, SQLAlchemy and psycopg (never shared/ or
services/): anything of ours would raise the floor it is there to measure.
"""

from __future__ import annotations

import os
from datetime import datetime

import flask
import marshmallow as ma
from flask_smorest import Api, Blueprint
from sqlalchemy import DateTime, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Goal(Base):
    __tablename__ = "goals"
    __table_args__ = {"schema": "goals"}
    id: Mapped[str] = mapped_column(String, primary_key=True)
    user_id: Mapped[str] = mapped_column(String)
    title: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class GoalSchema(ma.Schema):
    id = ma.fields.String()
    title = ma.fields.String()
    createdAt = ma.fields.AwareDateTime(attribute="created_at")


class PageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(GoalSchema))


engine = create_engine(os.environ["FLOOR_DATABASE_URL"], pool_size=2)
app = flask.Flask(__name__)
app.config.update(API_TITLE="floor", API_VERSION="1", OPENAPI_VERSION="3.0.3")
api = Api(app)
blp = Blueprint("floor", __name__)


@blp.route("/floor/goals")
@blp.response(200, PageSchema)
def goals() -> dict[str, object]:
    """The newest 20 goals (the bench's one user has them all)."""
    with Session(engine) as session:
        rows = session.scalars(select(Goal).order_by(Goal.created_at.desc()).limit(20)).all()
    return {"items": rows}


api.register_blueprint(blp)
