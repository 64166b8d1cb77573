"""A 1 GiB blob streams through the store in bounded memory, on both pairs.

The writing and reading run in a child process (``blob_large.py``) so that
its resident memory is the store's alone, not pytest's or the other tests'.
The child checks nothing itself: it reports what it sent, what the store
answered and what it read back, and how far its memory rose; the asserts
are here.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import warnings
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from nubo.config import load
from nubo.store.schema import blobs as blobs_table
from nubo.store.schema import utcnow
from tests.seaweed import Seaweed
from tests.store.blob_helpers import BlobRig, listed, subprocess_env

CHILD = Path(__file__).with_name("blob_large.py")
SIZE = 1024**3
# Peak resident memory the child may add above its start, writing or reading.
MEMORY_LIMIT = 100 * 1000 * 1000
# Far above the ~20-40 s a run takes here, but a hung store still ends.
TIMEOUT = 600


@pytest.mark.slow
async def test_one_gib_blob_streams_in_bounded_memory(
    rig: BlobRig, request: pytest.FixtureRequest
) -> None:
    # The production part size, not the rig's smaller one: the memory of a
    # multipart upload grows with it, and the real setting is what counts.
    env = subprocess_env(rig, NUBO_S3_PART_SIZE=load(environ={}).s3_part_size)
    began = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        str(SIZE),
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, out
    result = json.loads(out.decode().strip().splitlines()[-1])

    try:
        assert result["size"] == SIZE
        assert result["id"] == result["sent_sha256"]
        assert result["read_size"] == SIZE
        assert result["read_sha256"] == result["sent_sha256"]
        assert result["write_peak_above"] < MEMORY_LIMIT, result
        assert result["read_peak_above"] < MEMORY_LIMIT, result
    finally:
        await remove_everything(rig)
        if rig.kind == "scale":
            await reclaim_seaweed(request.getfixturevalue("seaweed"))
    print(
        f"{rig.kind}: 1 GiB written in {result['write_seconds']}s "
        f"(peak +{result['write_peak_above'] / 1e6:.1f} MB), "
        f"read in {result['read_seconds']}s "
        f"(peak +{result['read_peak_above'] / 1e6:.1f} MB); "
        f"{time.monotonic() - began:.1f}s in all"
    )


async def remove_everything(rig: BlobRig) -> None:
    """Collect the blob now rather than leave a GiB in the temporary folders
    that pytest keeps from its last few runs."""
    async with rig.db.write() as conn:
        await conn.execute(update(blobs_table).values(pinned_until=utcnow()))
    await rig.blobs.collect(grace=0)
    assert await listed(rig.blobs) == (set(), set())


async def reclaim_seaweed(server: Seaweed) -> None:
    """Have SeaweedFS give back the disk space of the deleted GiBs.

    Deleted objects stay in its volume files until a vacuum, which ``weed
    mini`` never runs by itself in a test's time; the files would keep the
    staged and the published copy, 2 GiB, in pytest's temporary folders.
    The filer frees an object's chunks a moment after the delete, so the
    vacuum is asked for until the volumes have shrunk. Best effort: a
    failure here is not nubo's, so it warns instead of failing the test.
    """
    url = f"http://127.0.0.1:{_master_port(server)}/vol/vacuum"
    async with httpx.AsyncClient(timeout=60) as client:
        for _ in range(20):
            try:
                await client.get(url, params={"garbageThreshold": "0.0001"})
            except httpx.HTTPError as exc:
                warnings.warn(f"SeaweedFS vacuum failed: {exc}", stacklevel=1)
                return
            if _volume_bytes(server.folder) < SIZE // 4:
                return
            await asyncio.sleep(0.5)
    warnings.warn("SeaweedFS kept the deleted blob's space", stacklevel=1)


def _master_port(server: Seaweed) -> int:
    # The master's port is only on weed's command line.
    args = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
    prefix = b"-master.port="
    return next(int(a.removeprefix(prefix)) for a in args if a.startswith(prefix))


def _volume_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*.dat"))
