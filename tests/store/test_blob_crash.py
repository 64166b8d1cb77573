"""A writer killed with SIGKILL at random moments loses nothing it committed
and leaves nothing the collector cannot clean up (DESIGN.md, Durability)."""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import update

from nubo.store.schema import blobs as blobs_table
from nubo.store.schema import utcnow
from tests.store.blob_helpers import (
    BlobRig,
    listed,
    rows,
    stream_sha256,
    subprocess_env,
)

WRITER = Path(__file__).with_name("blob_writer.py")
ROUNDS = 6


async def run_and_kill(rig: BlobRig, seed: int, rng: random.Random) -> None:
    """Start the writer, let it work for a random while, SIGKILL it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WRITER),
        str(seed),
        env=subprocess_env(rig),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line == b"ready\n", line
        await asyncio.sleep(rng.uniform(0.3, 2.0))
        assert proc.returncode is None, "the writer stopped on its own"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
async def test_killed_writer_loses_nothing_and_leaves_nothing(rig: BlobRig) -> None:
    rng = random.Random()
    started = time.monotonic()
    for seed in range(ROUNDS):
        await run_and_kill(rig, seed, rng)

        # Every row someone uses or that is pinned has its bytes, intact.
        now = utcnow()
        for row in (await rows(rig.db)).values():
            if row.refcount > 0 or row.pinned_until > now:
                assert await stream_sha256(rig.blobs, row.id) == (row.id, row.size)

    table = await rows(rig.db)
    assert any(row.refcount > 0 for row in table.values())

    # Leftovers (staged copies, bytes without rows) go with no grace; rows
    # and their bytes stay.
    leftovers = await rig.blobs.collect(grace=0)
    assert await listed(rig.blobs) == (set(table), set())

    # Once every pin lapses, only bytes in use remain.
    async with rig.db.write() as conn:
        await conn.execute(update(blobs_table).values(pinned_until=utcnow()))
    await rig.blobs.collect(grace=0)
    table = await rows(rig.db)
    assert all(row.refcount > 0 for row in table.values())
    assert await listed(rig.blobs) == (set(table), set())
    for row in table.values():
        assert await stream_sha256(rig.blobs, row.id) == (row.id, row.size)
    print(
        f"{rig.kind}: {len(table)} blobs in use; left by kills: "
        f"{leftovers.orphans} orphans, {leftovers.staged} staged; "
        f"{time.monotonic() - started:.1f}s"
    )
