"""The S3 backend: blobs as objects in any S3-compatible store, via obstore.

Staging: a blob's hash is known only once its bytes have passed, so a stream
is uploaded to ``<prefix>/tmp/<random>`` while it is hashed, then copied on
the server to ``<prefix>/ab/cd/<sha256>`` (skipped when that object exists)
by ``publish``; ``Blobs.put`` deletes the staged object after its row
commits. Small blobs, those that end within one part, are the exception:
they are held in memory, hashed, and put straight under their final name in
one request, which saves four requests per message for typical mail.

Memory: a large stream goes up as a multipart upload of ``s3_part_size``
parts with at most ``UPLOAD_CONCURRENCY`` parts in flight, and comes down in
``CHUNK_SIZE`` pieces; nothing holds a whole large object. Hashing large
pieces runs in a worker thread so the event loop keeps serving others.

Known gaps:

- A process killed during a multipart upload leaves an incomplete upload
  that S3 keeps (invisibly to listings, so the collector cannot see it);
  configure the bucket's lifecycle rule to abort incomplete multipart
  uploads after a day.
- A single CopyObject is limited to 5 GiB on AWS S3, so larger blobs cannot
  be published there; SeaweedFS and MinIO have no such limit.
- With no access key configured, obstore falls back to the usual AWS chain
  (environment, web identity, container or instance metadata endpoints).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from typing import TYPE_CHECKING, Any

import obstore
from obstore.exceptions import BaseError
from obstore.store import S3Store

from nubo.config import Config
from nubo.store.blobs.backend import (
    CHUNK_SIZE,
    STAGING,
    Listed,
    Staged,
    blob_name,
    check_blob_id,
    parse_blob_name,
)
from nubo.store.blobs.errors import BlobNotFound, BlobStoreError

if TYPE_CHECKING:
    from obstore import GetResult, ObjectMeta
    from obstore.store import ClientConfig

log = logging.getLogger(__name__)

# Parts of one multipart upload in flight at once; with the part size this
# bounds the memory of one upload (4 x 8 MiB by default).
UPLOAD_CONCURRENCY = 4

# Pieces smaller than this are hashed on the event loop; a thread hand-off
# would cost more than the hashing.
_HASH_INLINE = 256 * 1024

# A name no blob or staged object ever has, for the health probe.
_PROBE = "nubo-health-probe"

# Objects listed per request when the collector walks the store.
_LIST_PAGE = 1000


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket/prefix``; the prefix may be ""."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def s3_store(config: Config, url: str) -> S3Store:
    """An obstore client for ``url`` from the S3 settings: path-style
    addressing (what self-hosted stores expect), HTTP allowed only when the
    endpoint says http://."""
    bucket, prefix = parse_s3_url(url)
    settings: dict[str, Any] = {
        "region": config.s3_region,
        "virtual_hosted_style_request": False,
    }
    endpoint: str = config.s3_endpoint
    if endpoint:
        # The _s3 variant outranks AWS_ENDPOINT_URL_S3 from the environment,
        # so the configured endpoint is the one used.
        settings["endpoint"] = endpoint
        settings["aws_endpoint_url_s3"] = endpoint
    if config.s3_access_key_id and config.s3_secret_access_key:
        settings["access_key_id"] = config.s3_access_key_id
        settings["secret_access_key"] = config.s3_secret_access_key
    client: ClientConfig = {
        "allow_http": endpoint.startswith("http://"),
        "connect_timeout": "5s",
        # A whole request may stream a large blob to a slow client; stalls
        # are caught per read instead.
        "timeout": "6h",
        "read_timeout": "120s",
    }
    try:
        return S3Store(bucket, prefix=prefix or None, client_options=client, **settings)
    except (BaseError, ValueError) as exc:
        raise BlobStoreError(f"bad S3 settings: {exc}") from exc


class S3Backend:
    """Blobs as objects in one bucket, under one prefix."""

    kind = "s3"

    def __init__(self, store: S3Store, *, part_size: int) -> None:
        self.store = store
        self.part_size = part_size
        self._executor = ThreadPoolExecutor(4, "nubo-blobs-hash")

    async def _hash(self, digest: Any, data: bytes) -> None:
        if len(data) < _HASH_INLINE:
            digest.update(data)
            return
        # hashlib releases the GIL on large buffers, so this runs beside
        # the event loop and obstore's own threads.
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, digest.update, data)

    async def stage(self, chunks: AsyncIterable[bytes]) -> Staged:
        digest = hashlib.sha256()
        stream = aiter(chunks)
        head: list[bytes] = []
        buffered = 0
        ended = False
        while buffered <= self.part_size:
            chunk = await anext(stream, None)
            if chunk is None:
                ended = True
                break
            head.append(chunk)
            buffered += len(chunk)

        if ended:
            data = b"".join(head)
            await self._hash(digest, data)
            return Staged(digest.hexdigest(), len(data), "", data)

        size = 0
        failure: BaseException | None = None

        async def body() -> AsyncIterator[bytes]:
            nonlocal size, failure
            for chunk in head:
                await self._hash(digest, chunk)
                size += len(chunk)
                yield chunk
            head.clear()
            try:
                async for chunk in stream:
                    await self._hash(digest, chunk)
                    size += len(chunk)
                    yield chunk
            except BaseException as exc:
                failure = exc  # the caller's stream failed, not the store
                raise

        name = f"{STAGING}/{uuid.uuid4().hex}"
        try:
            await obstore.put_async(
                self.store,
                name,
                body(),
                use_multipart=True,
                chunk_size=self.part_size,
                max_concurrency=UPLOAD_CONCURRENCY,
            )
        except (BaseError, OSError) as exc:
            if failure is not None:
                raise failure from None
            raise BlobStoreError("cannot upload a staged blob") from exc
        return Staged(digest.hexdigest(), size, name)

    async def publish(self, staged: Staged) -> None:
        final = blob_name(check_blob_id(staged.id))
        try:
            if staged.data is not None:
                # Re-putting identical bytes is harmless and saves a HEAD.
                await obstore.put_async(
                    self.store, final, staged.data, use_multipart=False
                )
            elif not await self.exists(staged.id):
                await obstore.copy_async(self.store, staged.name, final)
        except FileNotFoundError as exc:
            raise BlobStoreError("staged bytes vanished before publish") from exc
        except (BaseError, OSError) as exc:
            raise BlobStoreError("cannot publish a blob") from exc

    async def discard(self, name: str) -> None:
        if not name:
            return
        if not name.startswith(STAGING + "/"):
            raise BlobStoreError("not a staging name")
        try:
            await obstore.delete_async(self.store, name)
        except FileNotFoundError:
            pass
        except (BaseError, OSError) as exc:
            raise BlobStoreError("cannot remove a staged object") from exc

    async def open(self, blob_id: str) -> AsyncIterator[bytes]:
        name = blob_name(check_blob_id(blob_id))
        try:
            result = await obstore.get_async(self.store, name)
        except FileNotFoundError:
            raise BlobNotFound(blob_id) from None
        except (BaseError, OSError) as exc:
            raise BlobStoreError("cannot open a blob") from exc
        return _read(result)

    async def exists(self, blob_id: str) -> bool:
        try:
            await obstore.head_async(self.store, blob_name(check_blob_id(blob_id)))
        except FileNotFoundError:
            return False
        except (BaseError, OSError) as exc:
            raise BlobStoreError("cannot check a blob") from exc
        return True

    async def delete(self, blob_id: str) -> None:
        try:
            await obstore.delete_async(self.store, blob_name(check_blob_id(blob_id)))
        except FileNotFoundError:
            pass
        except (BaseError, OSError) as exc:
            raise BlobStoreError("cannot delete a blob") from exc

    async def list(self) -> AsyncIterator[Listed]:
        pages = obstore.list(self.store, None, chunk_size=_LIST_PAGE)
        try:
            async for page in pages:
                for meta in page:
                    entry = _listed(meta["path"], meta)
                    if entry is not None:
                        yield entry
        except (BaseError, OSError) as exc:
            raise BlobStoreError("cannot list the bucket") from exc

    async def healthy(self) -> bool:
        # A HEAD of a name that is never written: "not found" proves the
        # endpoint, bucket and credentials work without writing anything.
        try:
            await obstore.head_async(self.store, _PROBE)
        except FileNotFoundError:
            return True
        except (BaseError, OSError) as exc:
            log.warning("blob store unhealthy error=%s", type(exc).__name__)
            return False
        return True

    async def close(self) -> None:
        await asyncio.to_thread(self._executor.shutdown, wait=True)


def _listed(path: str, meta: ObjectMeta) -> Listed | None:
    modified = meta["last_modified"].astimezone(UTC)
    if path.startswith(STAGING + "/") and path.count("/") == 1:
        return Listed(path, True, modified, meta["size"])
    blob_id = parse_blob_name(path)
    if blob_id is None:
        return None
    return Listed(blob_id, False, modified, meta["size"])


async def _read(result: GetResult) -> AsyncIterator[bytes]:
    try:
        async for chunk in result.stream(min_chunk_size=CHUNK_SIZE):
            yield chunk
    except (BaseError, OSError) as exc:
        raise BlobStoreError("cannot read a blob") from exc
