"""Alembic migrations, applied at start and by ``nubo db upgrade``.

Several processes may start at once against one PostgreSQL: the upgrade holds
a PostgreSQL advisory lock so only one of them migrates and the others find
the work done. On SQLite the write lock of the migration transaction does the
same.

For developers, ``python -m nubo.store.migrate revision "what changed"`` writes
a new migration by comparing ``schema.py`` with a database upgraded to head.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from nubo.store.database import IMMEDIATE, Database

MIGRATIONS = Path(__file__).parent / "migrations"

# Any constant will do; it names "the nubo schema" among advisory locks.
_PG_LOCK_KEY = 0x6E75626F


def _alembic_config(connection: Connection | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(db: Database) -> str | None:
    async with db.engine.connect() as conn:
        return await conn.run_sync(_current)


async def upgrade(db: Database) -> tuple[str | None, str | None]:
    """Bring the schema to the newest revision; returns (before, after)."""

    def run(connection: Connection) -> tuple[str | None, str | None]:
        # One transaction from reading the revision to the last DDL, so that
        # a second process either waits for it or finds the work done.
        before = _current(connection)
        if before != head_revision():
            command.upgrade(_alembic_config(connection), "head")
        connection.commit()
        return before, head_revision()

    async with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            await conn.execute(select(func.pg_advisory_lock(_PG_LOCK_KEY)))
            await conn.commit()
        else:
            conn = await conn.execution_options(**{IMMEDIATE: True})
        try:
            return await conn.run_sync(run)
        finally:
            if db.dialect == "postgresql":
                await conn.execute(select(func.pg_advisory_unlock(_PG_LOCK_KEY)))
                await conn.commit()


async def _revision(message: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite+aiosqlite:///{folder}/draft.db")
        await upgrade(db)

        def write(connection: Connection) -> None:
            command.revision(
                _alembic_config(connection), message=message, autogenerate=True
            )

        async with db.engine.connect() as conn:
            await conn.run_sync(write)
        await db.close()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "revision":
        sys.exit('usage: python -m nubo.store.migrate revision "message"')
    asyncio.run(_revision(sys.argv[2]))
