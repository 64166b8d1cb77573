"""What the blob store tests share: the two storage pairs and ways to look in.

A ``BlobRig`` is one storage pair, ready to use: "embedded" is SQLite and a
folder in the test's temporary folder; "scale" is a fresh PostgreSQL
database and a fresh prefix in the session's SeaweedFS bucket. ``env`` holds
the same settings as ``NUBO_*`` variables, for the tests that run a writer
in a subprocess.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from nubo.config import Config
from nubo.store.blobs import Blobs
from nubo.store.database import Database
from nubo.store.schema import blobs as blobs_table

# Parts of S3 multipart uploads in the tests: the smallest S3 allows, so a
# few MiB already take the multipart path.
PART_SIZE = 5 * 1024 * 1024


@dataclass
class BlobRig:
    kind: str  # "embedded" or "scale"
    config: Config
    db: Database
    blobs: Blobs
    env: dict[str, str]


@dataclass(frozen=True)
class Row:
    id: str
    size: int
    refcount: int
    pinned_until: datetime


async def rows(db: Database) -> dict[str, Row]:
    async with db.read() as conn:
        result = await conn.execute(select(blobs_table))
        return {
            r.id: Row(r.id, r.size, r.refcount, r.pinned_until) for r in result.all()
        }


async def listed(blobs: Blobs) -> tuple[set[str], set[str]]:
    """(published blob ids, staging names) in the backend."""
    published: set[str] = set()
    staged: set[str] = set()
    async for entry in blobs.backend.list():
        (staged if entry.staged else published).add(entry.name)
    return published, staged


async def chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def stream_sha256(blobs: Blobs, blob_id: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    async for chunk in await blobs.open(blob_id):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def subprocess_env(rig: BlobRig, **extra: Any) -> dict[str, str]:
    """The environment of a child process using the rig's storage pair."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUBO_")}
    env.update(rig.env)
    env.update({k: str(v) for k, v in extra.items()})
    return env
