"""Fixtures every test shares: the two metadata backends.

The storage and account suites run twice: on the embedded backend (SQLite in
a temporary folder) and on the scale backend (a fresh database on the
PostgreSQL at ``NUBO_TEST_POSTGRES``, by default the local server's ``test``
database with trust authentication). Locally, an unreachable PostgreSQL skips
the scale runs with a message saying how to enable them; in CI (``CI`` set)
it fails them, so neither run can be skipped silently.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from nubo.store.database import Database
from nubo.store.migrate import upgrade
from tests.seaweed import seaweed  # noqa: F401 (one SeaweedFS per session)
from tests.serve import NuboProcess, cheap_env

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def pg_admin_url() -> str:
    return os.environ.get("NUBO_TEST_POSTGRES", PG_DEFAULT)


def scale_unavailable(what: str, how: str) -> None:
    """Skip locally, fail in CI: the scale run must not vanish in CI."""
    message = f"{what} is not available ({how})"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The admin URL of a reachable PostgreSQL, or a skip/fail."""

    async def probe() -> None:
        conn = await asyncpg.connect(pg_admin_url(), timeout=5)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        scale_unavailable(
            f"PostgreSQL at {pg_admin_url()}",
            f"{type(exc).__name__}; start it or set NUBO_TEST_POSTGRES",
        )
    yield pg_admin_url()


async def create_pg_database(admin_url: str) -> tuple[str, str]:
    """A new empty database; returns (its name, its asyncpg SQLAlchemy URL)."""
    name = "nubo_test_" + uuid.uuid4().hex[:12]
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = admin_url.rsplit("/", 1)[0]
    url = base.replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + name
    return name, url


async def drop_pg_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'nubo.db'}"
        return

    admin = request.getfixturevalue("pg_server")
    name, url = asyncio.run(create_pg_database(admin))
    try:
        yield url
    finally:
        asyncio.run(drop_pg_database(admin, name))


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A migrated database on each backend."""
    db = Database(database_url)
    await upgrade(db)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
def nubo_server(tmp_path: Path) -> Iterator[NuboProcess]:
    """A running ``nubo serve`` on the embedded default, on free ports."""
    server = NuboProcess(cheap_env(tmp_path / "data"))
    server.start()
    try:
        yield server
    finally:
        server.kill()
