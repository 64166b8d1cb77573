"""Migrations: they build exactly schema.py, and running them again is a no-op."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from nubo.store.database import Database
from nubo.store.migrate import current_revision, head_revision, upgrade
from nubo.store.schema import metadata


async def test_migrations_build_the_schema_module(database: Database) -> None:
    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        return list(compare_metadata(context, metadata))

    async with database.engine.connect() as conn:
        diff = await conn.run_sync(differences)

    assert diff == []
    assert await current_revision(database) == head_revision()


async def test_sqlite_autoincrement_as_in_the_schema_module(database: Database) -> None:
    """compare_metadata does not see AUTOINCREMENT: check the tables the
    migrations made never reuse ids exactly where schema.py says so."""
    if database.dialect != "sqlite":
        pytest.skip("PostgreSQL sequences never reuse ids")
    async with database.read() as conn:
        rows = (
            await conn.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
            )
        ).all()
    made = {name for name, sql in rows if "AUTOINCREMENT" in sql.upper()}
    wanted = {
        table.name
        for table in metadata.tables.values()
        if table.dialect_options["sqlite"]["autoincrement"]
    }
    assert {"queue_messages", "queue_recipients", "messages"} <= wanted
    assert made == wanted


async def test_upgrade_again_changes_nothing(database: Database) -> None:
    before, after = await upgrade(database)

    assert before == after == head_revision()


async def test_concurrent_upgrades_of_an_empty_store(database_url: str) -> None:
    """Several processes starting at once: one migrates, the others wait."""
    databases = [Database(database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(upgrade(db) for db in databases))
    finally:
        for db in databases:
            await db.close()

    migrated = [before for before, _ in results if before is None]
    assert len(migrated) == 1
    assert {after for _, after in results} == {head_revision()}
