"""The blob store: writing, reading, dedup and references, on both pairs."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from nubo.config import load
from nubo.store.blobs import (
    BlobNotFound,
    BlobStoreError,
    FolderBackend,
    S3Backend,
    open_backend,
)
from nubo.store.schema import utcnow
from tests.store.blob_helpers import (
    PART_SIZE,
    BlobRig,
    chunks,
    listed,
    rows,
    sha256,
    stream_sha256,
)

SMALL = b"From: a@example.org\r\n\r\nhello\r\n" * 100
# Past one S3 part: takes the multipart upload and the server-side copy.
LARGE = os.urandom(PART_SIZE + 300_000)


@pytest.mark.parametrize("data", [SMALL, LARGE, b""], ids=["small", "large", "empty"])
async def test_roundtrip(rig: BlobRig, data: bytes) -> None:
    blob_id, size = await rig.blobs.put(chunks(data))

    assert (blob_id, size) == (sha256(data), len(data))
    assert await rig.blobs.read_bytes(blob_id) == data
    assert await stream_sha256(rig.blobs, blob_id) == (blob_id, len(data))
    assert await rig.blobs.exists(blob_id)

    row = (await rows(rig.db))[blob_id]
    assert (row.size, row.refcount) == (len(data), 0)
    assert row.pinned_until > utcnow() + timedelta(seconds=3000)

    published, staged = await listed(rig.blobs)
    assert published == {blob_id}
    assert staged == set()


async def test_chunk_boundaries_do_not_matter(rig: BlobRig) -> None:
    async def odd_pieces() -> AsyncIterator[bytes]:
        yield b""
        yield LARGE[:1]
        yield LARGE[1 : 3 * 1024 * 1024]
        yield b""
        yield LARGE[3 * 1024 * 1024 :]

    blob_id, size = await rig.blobs.put(odd_pieces())

    assert (blob_id, size) == (sha256(LARGE), len(LARGE))
    assert await rig.blobs.read_bytes(blob_id) == LARGE


async def test_identical_bytes_are_stored_once(rig: BlobRig) -> None:
    first = await rig.blobs.put(chunks(SMALL, 7))
    second = await rig.blobs.put_bytes(SMALL)
    other = await rig.blobs.put_bytes(SMALL + b"!")

    assert first == second
    assert other[0] != first[0]
    published, staged = await listed(rig.blobs)
    assert published == {first[0], other[0]}
    assert staged == set()
    assert set(await rows(rig.db)) == {first[0], other[0]}


@pytest.mark.parametrize("data", [SMALL, LARGE], ids=["small", "large"])
async def test_concurrent_writers_of_the_same_bytes(rig: BlobRig, data: bytes) -> None:
    results = await asyncio.gather(*(rig.blobs.put(chunks(data)) for _ in range(20)))

    assert set(results) == {(sha256(data), len(data))}
    published, staged = await listed(rig.blobs)
    assert published == {sha256(data)}
    assert staged == set()
    assert list(await rows(rig.db)) == [sha256(data)]
    assert await rig.blobs.read_bytes(sha256(data)) == data


async def test_ref_and_unref_count_uses(rig: BlobRig) -> None:
    blob_id, _ = await rig.blobs.put_bytes(SMALL)

    async with rig.db.write() as conn:
        await rig.blobs.ref(conn, blob_id)
        await rig.blobs.ref(conn, blob_id)
    assert (await rows(rig.db))[blob_id].refcount == 2

    async with rig.db.write() as conn:
        await rig.blobs.unref(conn, blob_id)
    assert (await rows(rig.db))[blob_id].refcount == 1

    with pytest.raises(RuntimeError):
        async with rig.db.write() as conn:
            await rig.blobs.ref(conn, blob_id)
            raise RuntimeError("the caller's transaction fails")
    assert (await rows(rig.db))[blob_id].refcount == 1

    async with rig.db.write() as conn:
        await rig.blobs.unref(conn, blob_id)
    with pytest.raises(BlobNotFound):
        async with rig.db.write() as conn:
            await rig.blobs.unref(conn, blob_id)
    assert (await rows(rig.db))[blob_id].refcount == 0


async def test_ref_of_an_unknown_blob_fails(rig: BlobRig) -> None:
    with pytest.raises(BlobNotFound):
        async with rig.db.write() as conn:
            await rig.blobs.ref(conn, sha256(b"never stored"))


@pytest.mark.parametrize("blob_id", [sha256(b"never stored"), "../../etc/passwd", ""])
async def test_missing_blob(rig: BlobRig, blob_id: str) -> None:
    assert not await rig.blobs.exists(blob_id)
    with pytest.raises(BlobNotFound):
        await rig.blobs.open(blob_id)
    with pytest.raises(BlobNotFound):
        await rig.blobs.read_bytes(blob_id)


class ClientGone(Exception):
    pass


# Failing in the first piece, and past the first S3 part (64 KiB pieces).
@pytest.mark.parametrize("fail_after", [1, PART_SIZE // 65536 + 2])
async def test_a_failing_stream_leaves_nothing(rig: BlobRig, fail_after: int) -> None:
    async def broken() -> AsyncIterator[bytes]:
        sent = 0
        async for piece in chunks(LARGE):
            if sent == fail_after:
                raise ClientGone
            sent += 1
            yield piece

    with pytest.raises(ClientGone):
        await rig.blobs.put(broken())

    assert await rows(rig.db) == {}
    # The folder backend removes the partial file on its writer thread once
    # the piece in flight is written, after put has raised: give it 5 s.
    for _ in range(100):
        if await listed(rig.blobs) == (set(), set()):
            break
        await asyncio.sleep(0.05)
    assert await listed(rig.blobs) == (set(), set())


def test_open_backend_follows_blob_url(tmp_path: Path) -> None:
    config = load(environ={}).replace(data=str(tmp_path))
    folder = open_backend(config)
    assert isinstance(folder, FolderBackend)
    assert folder.root == (tmp_path / "blobs").resolve()
    assert (tmp_path / "blobs" / "tmp").is_dir()

    s3 = open_backend(
        config.replace(blob_url="s3://bucket/some/prefix", s3_endpoint="http://h:1")
    )
    assert isinstance(s3, S3Backend)
    assert s3.part_size == config.s3_part_size


def test_folder_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(BlobStoreError):
        open_backend(load(environ={}).replace(blob_url=str(tmp_path / "file" / "x")))
