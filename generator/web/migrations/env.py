"""Alembic's environment for the web page's database: the models' metadata, and the connection db.py hands over.

There is no alembic.ini: generator/web/db.py builds the Config in code (alembic_config) and runs `upgrade head` when
the page starts, inside a transaction it already holds (so migrating is all or nothing, and one process at a time).
To write a new migration after changing models.py, from the repository's root:

    python -c "from alembic import command; from generator.web.db import alembic_config; \
command.revision(alembic_config('sqlite:////tmp/rev.sqlite3'), 'what changed', autogenerate=True)"

after upgrading /tmp/rev.sqlite3 to the current head (open_database does); then read the new file and fix it by hand.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from generator.web.models import Base

config = context.config
target_metadata = Base.metadata


def run_offline() -> None:
    """Write the SQL to standard output (`alembic upgrade --sql`), for a database administrator to read or run."""
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Migrate through the connection db.py passes in config.attributes, or one made from sqlalchemy.url."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as connection:
            _migrate(connection)
            connection.commit()
    finally:
        engine.dispose()


def _migrate(connection) -> None:
    # render_as_batch: SQLite alters a table by copying it, which batch mode does (and PostgreSQL ignores).
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
