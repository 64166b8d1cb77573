"""A writer for the crash test: puts and references blobs until killed.

Run as ``python blob_writer.py SEED`` with the storage pair in ``NUBO_*``
variables. Each round puts one blob (a repeated one now and then, for
dedup; a multipart-sized one now and then, for the S3 copy), then records a
use of it in a transaction of its own, as a mail delivery would, and
sometimes drops an earlier use. It prints "ready" once the store is open,
then loops until SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections.abc import AsyncIterator

from nubo.config import load
from nubo.store.blobs import open_blobs
from nubo.store.database import Database


async def pieces(data: bytes, rng: random.Random) -> AsyncIterator[bytes]:
    size = rng.choice([4096, 65536, 1 << 20])
    for start in range(0, len(data), size):
        yield data[start : start + size]


def content(rng: random.Random, pool: list[bytes]) -> bytes:
    roll = rng.random()
    if roll < 0.3:
        return rng.choice(pool)
    if roll < 0.85:
        return os.urandom(rng.randrange(100, 200_000))
    return os.urandom(rng.randrange(5 * 1024 * 1024, 8 * 1024 * 1024))


async def main(seed: int) -> None:
    config = load()
    db = Database(config.effective_database_url)
    blobs = open_blobs(config, db)
    rng = random.Random(seed)
    pool = [b"shared %d " % n * 2000 for n in range(4)]
    held: list[str] = []
    print("ready", flush=True)
    while True:
        blob_id, _ = await blobs.put(pieces(content(rng, pool), rng))
        async with db.write() as conn:
            await blobs.ref(conn, blob_id)
        held.append(blob_id)
        if rng.random() < 0.3:
            async with db.write() as conn:
                await blobs.unref(conn, held.pop(rng.randrange(len(held))))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
