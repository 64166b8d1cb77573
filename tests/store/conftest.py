"""Fixtures of the storage suite: the blob store on each storage pair.

``rig`` runs a test twice, on the two pairs nubo supports: "embedded"
(SQLite and a folder) and "scale" (PostgreSQL and SeaweedFS). The other
combinations work too but are not a deployment anyone runs, so they are not
multiplied into the suite.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nubo.config import load
from nubo.store.blobs import open_blobs
from nubo.store.database import Database
from nubo.store.migrate import upgrade
from tests.conftest import create_pg_database, drop_pg_database
from tests.seaweed import Seaweed
from tests.store.blob_helpers import PART_SIZE, BlobRig


@dataclass(frozen=True)
class Pair:
    kind: str  # "embedded" or "scale"
    pg_admin: str = ""
    seaweed: Seaweed | None = None


@pytest.fixture(
    params=["embedded", pytest.param("scale", marks=pytest.mark.scale)],
)
def pair(request: pytest.FixtureRequest) -> Pair:
    """Which storage pair; the scale one brings up its servers (sync fixtures,
    so they are asked for here, outside the event loop)."""
    if request.param == "embedded":
        return Pair("embedded")
    return Pair(
        "scale",
        pg_admin=request.getfixturevalue("pg_server"),
        seaweed=request.getfixturevalue("seaweed"),
    )


@pytest.fixture
async def rig(pair: Pair, tmp_path: Path) -> AsyncIterator[BlobRig]:
    """A migrated database and an empty blob store, on each storage pair."""
    settings: dict[str, object] = {
        "data": str(tmp_path / "data"),
        "s3_part_size": PART_SIZE,
    }
    pg_name = ""
    if pair.seaweed is None:
        settings["database_url"] = f"sqlite+aiosqlite:///{tmp_path / 'nubo.db'}"
        settings["blob_url"] = str(tmp_path / "blobs")
    else:
        pg_name, settings["database_url"] = await create_pg_database(pair.pg_admin)
        settings.update(pair.seaweed.settings("t-" + uuid.uuid4().hex[:12]))

    config = load(environ={}).replace(**settings)
    db = Database(config.effective_database_url)
    try:
        await upgrade(db)
        blobs = open_blobs(config, db)
        env = {"NUBO_" + k.upper(): str(v) for k, v in settings.items()}
        yield BlobRig(pair.kind, config, db, blobs, env)
        await blobs.close()
    finally:
        await db.close()
        if pg_name:
            await drop_pg_database(pair.pg_admin, pg_name)
