"""Blobs.ref_many and unref_many: many uses counted at once, as a copy or
an expunge of many messages needs, with the checks of ref and unref."""

from __future__ import annotations

import pytest

from nubo.store.blobs import BlobNotFound
from tests.store.blob_helpers import BlobRig, rows, sha256


async def test_ref_many_counts_each_listing(rig: BlobRig) -> None:
    a, _ = await rig.blobs.put_bytes(b"a")
    b, _ = await rig.blobs.put_bytes(b"b")

    async with rig.db.write() as conn:
        await rig.blobs.ref_many(conn, [b, a, b, b])

    table = await rows(rig.db)
    assert (table[a].refcount, table[b].refcount) == (1, 3)

    async with rig.db.write() as conn:
        await rig.blobs.unref_many(conn, [b, b, a])
    table = await rows(rig.db)
    assert (table[a].refcount, table[b].refcount) == (0, 1)

    async with rig.db.write() as conn:
        await rig.blobs.ref_many(conn, [])
        await rig.blobs.unref_many(conn, [])


async def test_many_pages_of_ids(rig: BlobRig) -> None:
    ids = [(await rig.blobs.put_bytes(b"%d" % n))[0] for n in range(1100)]

    async with rig.db.write() as conn:
        await rig.blobs.ref_many(conn, ids + ids[:10])

    table = await rows(rig.db)
    assert sum(row.refcount for row in table.values()) == 1110


async def test_a_missing_or_overdrawn_blob_refuses_the_whole_batch(
    rig: BlobRig,
) -> None:
    a, _ = await rig.blobs.put_bytes(b"a")
    missing = sha256(b"never stored")

    with pytest.raises(BlobNotFound):
        async with rig.db.write() as conn:
            await rig.blobs.ref_many(conn, [a, missing])
    assert (await rows(rig.db))[a].refcount == 0

    async with rig.db.write() as conn:
        await rig.blobs.ref(conn, a)
    with pytest.raises(BlobNotFound):
        async with rig.db.write() as conn:
            await rig.blobs.unref_many(conn, [a, a])
    assert (await rows(rig.db))[a].refcount == 1
    with pytest.raises(BlobNotFound):
        async with rig.db.write() as conn:
            await rig.blobs.unref_many(conn, ["not-an-id"])
