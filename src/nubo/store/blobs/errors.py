"""What can go wrong in the blob store, as exceptions of its own.

::

    BlobStoreError          the bytes could not be written, read or removed
     └── BlobNotFound       no blob has this id (or the id is malformed)

Backend failures (an unreachable object store, a full disk) surface as
``BlobStoreError`` with the cause chained; metadata failures stay the
SQLAlchemy errors of ``nubo.store.database``.
"""

from __future__ import annotations


class BlobStoreError(Exception):
    """The blob backend failed to store, read or delete bytes."""


class BlobNotFound(BlobStoreError):
    """No blob with this id exists, or the id is not a SHA-256 hex digest."""
