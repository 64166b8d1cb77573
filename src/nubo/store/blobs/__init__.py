"""The blob store: message and file bytes, by the SHA-256 of their content.

``open_blobs(config, db)`` picks the backend that ``blob_url`` names (a
folder, the embedded default, or ``s3://bucket/prefix``) and returns a
``Blobs``, which pairs it with the ``blobs`` table. ``store.py`` holds the
write, reference and collection protocol and why it never loses referenced
bytes; ``folder.py`` and ``s3.py`` the two backends; ``backend.py`` the
interface between them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from nubo.config import Config
from nubo.store.blobs.backend import Backend, Listed, Staged, is_blob_id
from nubo.store.blobs.errors import BlobNotFound, BlobStoreError
from nubo.store.blobs.folder import FolderBackend
from nubo.store.blobs.s3 import S3Backend, s3_store
from nubo.store.blobs.store import Blobs, CollectReport
from nubo.store.database import Database

__all__ = [
    "Backend",
    "BlobNotFound",
    "BlobStoreError",
    "Blobs",
    "CollectReport",
    "FolderBackend",
    "Listed",
    "S3Backend",
    "Staged",
    "is_blob_id",
    "open_backend",
    "open_blobs",
]

log = logging.getLogger(__name__)


def open_backend(config: Config) -> Backend:
    """The backend ``config.effective_blob_url`` names; no I/O but a mkdir."""
    url = config.effective_blob_url
    if url.startswith("s3://"):
        return S3Backend(s3_store(config, url), part_size=config.s3_part_size)
    return FolderBackend(Path(url).expanduser())


def open_blobs(config: Config, db: Database) -> Blobs:
    """The blob store the settings name, paired with ``db``."""
    backend = open_backend(config)
    log.info("blob store opened backend=%s", backend.kind)
    return Blobs(backend, db, grace=config.blob_gc_grace)
