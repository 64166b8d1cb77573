"""SQLite transactions on the event loop's thread (``nubo.store.sqlite_inline``).

Reads and writes of ``Database`` on SQLite run inline; a write waits for
another process's write lock with asyncio.sleep, so the loop keeps serving,
and gives up after ``SQLITE_BUSY_TIMEOUT_MS`` with the driver's error.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from nubo.store import database
from nubo.store.database import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    store = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    async with store.write() as conn:
        await conn.execute(text("CREATE TABLE t (a INTEGER PRIMARY KEY)"))
    yield store
    await store.close()


async def count(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM t"))).scalar_one())


async def test_commit_rollback_and_errors_as_with_aiosqlite(db: Database) -> None:
    async with db.write() as conn:
        await conn.execute(text("INSERT INTO t VALUES (1), (2)"))

    with pytest.raises(KeyError):
        async with db.write() as conn:
            await conn.execute(text("INSERT INTO t VALUES (3)"))
            raise KeyError
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            await conn.execute(text("INSERT INTO t VALUES (4)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))

    assert await count(db) == 2
    async with db.read() as conn:
        rows = (await conn.execute(text("SELECT a FROM t ORDER BY a"))).all()
    assert [row.a for row in rows] == [1, 2]


async def test_a_write_waits_for_another_process_without_holding_the_loop(
    db: Database, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def write() -> None:
        async with db.write() as conn:
            await conn.execute(text("INSERT INTO t VALUES (7)"))

    clock = asyncio.create_task(ticker())
    writing = asyncio.create_task(write())
    await asyncio.sleep(0.3)
    assert not writing.done()
    assert await count(db) == 0  # readers are not held by the lock either
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(writing, 5)
    clock.cancel()

    assert ticks >= 10  # the loop ran all along
    assert await count(db) == 1


async def test_a_write_gives_up_after_the_busy_timeout(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 200)
    other = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="locked"):
            async with db.write() as conn:
                await conn.execute(text("INSERT INTO t VALUES (8)"))
    finally:
        other.execute("ROLLBACK")
        other.close()

    async with db.write() as conn:  # and the next write works
        await conn.execute(text("INSERT INTO t VALUES (9)"))
    assert await count(db) == 1
