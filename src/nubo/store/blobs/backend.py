"""The interface every blob backend offers, and the names bytes live under.

A backend keeps bytes under their SHA-256 and knows nothing of the SQL
``blobs`` table; ``Blobs`` (``store.py``) combines the two. Writing happens in
two steps so that the SQL side can decide in between: ``stage`` streams bytes
to a temporary name while hashing them, ``publish`` makes them appear under
their final name, and the staged copy stays until ``discard`` (``Blobs`` needs
it to publish again if the collector removed the final name meanwhile).

Names, relative to the backend's root (a folder or an S3 prefix):

- ``ab/cd/<sha256>`` for a published blob: two fan-out levels keep a folder
  to a few hundred entries even with tens of millions of blobs;
- ``tmp/<random>`` for staged bytes.

Anything else under the root is left alone by every operation, the collector
included.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from nubo.store.blobs.errors import BlobNotFound

STAGING = "tmp"

# Bytes per read from a backend, and per write into a folder: large enough
# that thread hand-offs and syscalls cost little, small enough to stream.
CHUNK_SIZE = 1024 * 1024

_BLOB_ID = re.compile(r"[0-9a-f]{64}")


def is_blob_id(value: str) -> bool:
    """Whether ``value`` is a lowercase hex SHA-256, the only valid blob id."""
    return _BLOB_ID.fullmatch(value) is not None


def check_blob_id(value: str) -> str:
    """``value`` if it is a blob id; ``BlobNotFound`` otherwise.

    Every backend path is built from a checked id, so no caller-supplied
    string can name a file outside the store.
    """
    if not is_blob_id(value):
        raise BlobNotFound("not a blob id")
    return value


def blob_name(blob_id: str) -> str:
    """The fan-out name of a blob: ``ab/cd/abcd…``."""
    return f"{blob_id[:2]}/{blob_id[2:4]}/{blob_id}"


def parse_blob_name(name: str) -> str | None:
    """The blob id a final name stands for, or None for anything else."""
    parts = name.split("/")
    if len(parts) != 3:
        return None
    top, sub, blob_id = parts
    if not is_blob_id(blob_id) or top != blob_id[:2] or sub != blob_id[2:4]:
        return None
    return blob_id


@dataclass(frozen=True)
class Staged:
    """Bytes written under a temporary name (or held, when small) and hashed.

    ``name`` is the staging name to ``discard`` ("" when nothing was written,
    as for small S3 blobs kept in ``data`` until published).
    """

    id: str
    size: int
    name: str
    data: bytes | None = None


@dataclass(frozen=True)
class Listed:
    """One entry of a backend listing, for the collector."""

    name: str  # a blob id, or a staging name when ``staged``
    staged: bool
    modified: datetime  # aware, UTC
    size: int


class Backend(Protocol):
    """Where the bytes live: a folder, or an S3-compatible object store."""

    kind: str

    async def stage(self, chunks: AsyncIterable[bytes]) -> Staged:
        """Write ``chunks`` under a temporary name, hashing; durable on return."""
        ...

    async def publish(self, staged: Staged) -> None:
        """Make the staged bytes exist durably under their final name.

        Does nothing if the final name already exists (same id, same bytes).
        """
        ...

    async def discard(self, name: str) -> None:
        """Remove staged bytes; a missing name is not an error."""
        ...

    async def open(self, blob_id: str) -> AsyncIterator[bytes]:
        """A stream of the blob's bytes; ``BlobNotFound`` if it is absent."""
        ...

    async def exists(self, blob_id: str) -> bool:
        """Whether the blob's final name exists."""
        ...

    async def delete(self, blob_id: str) -> None:
        """Remove a published blob; a missing blob is not an error."""
        ...

    def list(self) -> AsyncIterator[Listed]:
        """Every published blob and every staged name, in no set order."""
        ...

    async def healthy(self) -> bool:
        """Whether the backend answers and accepts writes, for ``/healthz``."""
        ...

    async def close(self) -> None:
        """Release threads and connections."""
        ...
