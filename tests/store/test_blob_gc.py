"""The collector: what it deletes, what it must never delete, and races."""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import AsyncIterator

import obstore
import pytest
from sqlalchemy import update

from nubo.store.blobs import (
    BlobNotFound,
    Blobs,
    BlobStoreError,
    FolderBackend,
    S3Backend,
    open_backend,
)
from nubo.store.database import Database
from nubo.store.schema import blobs as blobs_table
from tests.store.blob_helpers import PART_SIZE, BlobRig, chunks, listed, rows, sha256

DATA = b"Subject: gc\r\n\r\n" + b"x" * 5000


async def expire_pins(db: Database) -> None:
    """Make every pin lapse, as if the grace had passed."""
    async with db.write() as conn:
        await conn.execute(
            update(blobs_table).values(pinned_until=blobs_table.c.created_at)
        )


async def stage_only(blobs: Blobs) -> str:
    """Bytes staged and never published: a writer killed mid-put. (Past one
    part, as S3 keeps smaller blobs in memory until published.)"""
    staged = await blobs.backend.stage(chunks(os.urandom(PART_SIZE + 1)))
    assert staged.name
    return staged.name


async def orphan(blobs: Blobs, data: bytes) -> str:
    """Bytes published with no row: a writer killed before its commit."""
    staged = await blobs.backend.stage(chunks(data))
    await blobs.backend.publish(staged)
    await blobs.backend.discard(staged.name)
    return staged.id


async def test_unreferenced_blobs_are_collected_after_their_pin(rig: BlobRig) -> None:
    blob_id, size = await rig.blobs.put_bytes(DATA)

    report = await rig.blobs.collect()
    assert report.expired == 0
    assert await rig.blobs.exists(blob_id)

    await expire_pins(rig.db)
    report = await rig.blobs.collect()

    assert (report.expired, report.freed_bytes, report.errors) == (1, size, 0)
    assert not await rig.blobs.exists(blob_id)
    assert await rows(rig.db) == {}
    assert await listed(rig.blobs) == (set(), set())


async def test_referenced_blobs_are_never_collected(rig: BlobRig) -> None:
    kept, _ = await rig.blobs.put_bytes(DATA)
    dropped, _ = await rig.blobs.put_bytes(DATA + b"2")
    async with rig.db.write() as conn:
        await rig.blobs.ref(conn, kept)
        await rig.blobs.ref(conn, dropped)
    await expire_pins(rig.db)

    assert (await rig.blobs.collect(grace=0)).expired == 0
    assert await rig.blobs.read_bytes(kept) == DATA

    async with rig.db.write() as conn:
        await rig.blobs.unref(conn, dropped)
    report = await rig.blobs.collect(grace=0)

    assert report.expired == 1
    assert await rig.blobs.read_bytes(kept) == DATA
    assert not await rig.blobs.exists(dropped)
    assert set(await rows(rig.db)) == {kept}


async def test_pinned_blobs_are_never_collected(rig: BlobRig) -> None:
    blob_id, _ = await rig.blobs.put_bytes(DATA)

    report = await rig.blobs.collect(grace=0)

    assert report.expired == report.orphans == 0
    assert await rig.blobs.read_bytes(blob_id) == DATA


async def test_putting_again_renews_the_pin(rig: BlobRig) -> None:
    rig.blobs.grace = 0
    blob_id, _ = await rig.blobs.put_bytes(DATA)
    rig.blobs.grace = 3600
    await rig.blobs.put_bytes(DATA)

    assert (await rig.blobs.collect(grace=0)).expired == 0
    assert await rig.blobs.read_bytes(blob_id) == DATA


async def test_orphans_and_staging_leftovers_wait_for_the_grace(rig: BlobRig) -> None:
    lost = await orphan(rig.blobs, DATA)
    leftover = await stage_only(rig.blobs)
    owned, _ = await rig.blobs.put_bytes(DATA + b"owned")

    report = await rig.blobs.collect()  # the configured grace: an hour
    assert report.orphans == report.staged == 0
    assert await listed(rig.blobs) == ({lost, owned}, {leftover})

    await asyncio.sleep(0.01)  # mtimes strictly before "now"
    report = await rig.blobs.collect(grace=0)

    assert (report.orphans, report.staged, report.expired) == (1, 1, 0)
    assert await listed(rig.blobs) == ({owned}, set())
    assert await rig.blobs.read_bytes(owned) == DATA + b"owned"


async def test_the_collector_leaves_foreign_names_alone(rig: BlobRig) -> None:
    backend = rig.blobs.backend
    if isinstance(backend, FolderBackend):
        (backend.root / "README").write_text("not a blob")
        (backend.root / "ab").mkdir()
        (backend.root / "ab" / "zz").mkdir()
        (backend.root / "ab" / "zz" / ("ab" + "0" * 62)).write_text("misplaced")
    else:
        assert isinstance(backend, S3Backend)
        await obstore.put_async(backend.store, "README", b"not a blob")
        await obstore.put_async(backend.store, "ab/zz/ab" + "0" * 62, b"misplaced")
    await asyncio.sleep(0.01)

    report = await rig.blobs.collect(grace=0)

    assert (report.orphans, report.staged, report.errors) == (0, 0, 0)
    if isinstance(backend, FolderBackend):
        assert (backend.root / "README").read_text() == "not a blob"
    else:
        assert isinstance(backend, S3Backend)
        await obstore.head_async(backend.store, "README")


async def test_collect_races_put_of_the_same_bytes(
    rig: BlobRig, caplog: pytest.LogCaptureFixture
) -> None:
    """Writers put, reference, check and drop two contents over and over
    while a collector with no grace at all loops on its own connection pool:
    a referenced blob always has its bytes, whatever the interleaving."""
    caplog.set_level(logging.DEBUG, logger="nubo.store.blobs")
    rig.blobs.grace = 0  # pins lapse at once: every put races the collector
    other_db = Database(rig.config.effective_database_url)
    collector = Blobs(open_backend(rig.config), other_db, grace=0)
    contents = [DATA + bytes([n]) for n in range(2)]
    rounds = 80 if rig.kind == "scale" else 120
    stop = asyncio.Event()
    stats = dict.fromkeys(["collected", "runs", "lost", "refs", "put_failed"], 0)

    async def collect_forever() -> None:
        while not stop.is_set():
            report = await collector.collect(grace=0)
            stats["collected"] += report.expired + report.orphans
            stats["runs"] += 1
            await asyncio.sleep(0)

    async def write(seed: int) -> None:
        rng = random.Random(seed)
        for n in range(rounds):
            data = rng.choice(contents)
            try:
                blob_id, _ = await rig.blobs.put(chunks(data, rng.choice([7, 4096])))
            except BlobStoreError as exc:
                # With no grace the collector may take a staged copy from
                # under a put in flight: that put fails, nothing is lost.
                assert "staged bytes vanished" in str(exc)
                stats["put_failed"] += 1
                continue
            try:
                async with rig.db.write() as conn:
                    await rig.blobs.ref(conn, blob_id)
            except BlobNotFound:
                stats["lost"] += 1  # collected before ref: zero grace allows it
                continue
            stats["refs"] += 1
            assert await rig.blobs.read_bytes(blob_id) == data
            await asyncio.sleep(rng.random() / 200)
            assert await rig.blobs.read_bytes(blob_id) == data
            if n < rounds - 1:  # the last reference is kept, to check below
                async with rig.db.write() as conn:
                    await rig.blobs.unref(conn, blob_id)

    try:
        async with asyncio.TaskGroup() as group:
            task = group.create_task(collect_forever())
            await asyncio.wait([group.create_task(write(n)) for n in range(3)])
            stop.set()
            await task
    finally:
        await collector.close()
        await other_db.close()

    stats["republished"] = caplog.text.count("blob republished")
    print(rig.kind, stats)
    assert stats["collected"] > 0 and stats["refs"] > 0, stats
    for row in (await rows(rig.db)).values():
        if row.refcount > 0:
            data = next(c for c in contents if sha256(c) == row.id)
            assert await rig.blobs.read_bytes(row.id) == data


async def test_collect_races_put_of_large_bytes(rig: BlobRig) -> None:
    """The same race with multipart-sized blobs, whose S3 publish is a copy."""
    rig.blobs.grace = 0
    data = os.urandom(6 * 1024 * 1024)
    stop = asyncio.Event()

    async def collect_forever() -> None:
        while not stop.is_set():
            await rig.blobs.collect(grace=0)
            await asyncio.sleep(0)

    async def write() -> None:
        for _ in range(6):
            try:
                blob_id, _ = await rig.blobs.put(big(data))
            except BlobStoreError as exc:
                assert "staged bytes vanished" in str(exc)
                continue
            try:
                async with rig.db.write() as conn:
                    await rig.blobs.ref(conn, blob_id)
            except BlobNotFound:
                continue
            assert await rig.blobs.read_bytes(blob_id) == data
            async with rig.db.write() as conn:
                await rig.blobs.unref(conn, blob_id)

    async with asyncio.TaskGroup() as group:
        task = group.create_task(collect_forever())
        await asyncio.wait([group.create_task(write()) for _ in range(2)])
        stop.set()
        await task


async def big(data: bytes) -> AsyncIterator[bytes]:
    async for piece in chunks(data, 1024 * 1024):
        yield piece
