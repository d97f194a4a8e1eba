"""The body of every service's Alembic `env.py`.

Each service migrates only its own schema, as its own role, with its version table inside
that schema; objects of other schemas are invisible to autogenerate and `alembic check`.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import MetaData, create_engine, pool

from shared.config import database_url


def run(metadata: MetaData) -> None:
    schema = metadata.schema
    assert schema, "service metadata must name its schema"
    url = context.config.get_main_option("sqlalchemy.url") or database_url(schema)

    def include_name(name: str | None, type_: str, _parents: Any) -> bool:
        return name == schema if type_ == "schema" else True

    def include_object(obj: Any, name: str | None, type_: str, _reflected: bool,
                       _compare_to: Any) -> bool:
        if type_ == "table":
            return bool(obj.schema == schema and name != "alembic_version")
        return True

    options: dict[str, Any] = dict(
        target_metadata=metadata,
        version_table_schema=schema,
        include_schemas=True,
        include_name=include_name,
        include_object=include_object,
        compare_type=True,
        compare_server_default=True,
    )
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    # Reflect our schema by its name, never as "the default schema", whatever the role's
    # search_path: that is what keeps comparisons exact and other schemas out.
    engine = create_engine(url, poolclass=pool.NullPool,
                           connect_args={"options": "-c search_path=public"})
    with engine.connect() as connection:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
