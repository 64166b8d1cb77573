"""A child process for the large-blob test: streams one big blob in and out.

Run as ``python blob_large.py SIZE`` with the storage pair in ``NUBO_*``
variables. Once the store is open it takes its resident memory as the
baseline, then puts SIZE bytes of deterministic pseudo-random data (made one
piece at a time and hashed on the way, so the data never exists whole here),
reads the blob back as a stream, hashing again, and prints one JSON object:
what it sent and got back, and how far its peak resident memory rose above
the baseline while writing and while reading.

The peak is the kernel's ``VmHWM``; writing 5 to ``/proc/self/clear_refs``
resets it to the current resident size, so each phase gets its own peak.
Where that reset is refused, ``VmHWM`` stays the peak since the process
started, which can only overstate the rise, never hide one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import text

from nubo.config import load
from nubo.store.blobs import open_blobs
from nubo.store.database import Database

PIECE = 1024 * 1024
SEED = 20240601


def status_bytes(field: str) -> int:
    """A ``kB`` line of ``/proc/self/status`` (VmRSS, VmHWM), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> bool:
    """Make ``VmHWM`` start again from the current RSS; False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


async def generate(size: int, digest: Any) -> AsyncIterator[bytes]:
    """``size`` pseudo-random bytes in 1 MiB pieces, fed to ``digest`` too.

    One random block with a counter in its first 8 bytes: every piece
    differs (so no piece repeats, whatever a backend would do with that),
    and making one costs a copy rather than a random generator's time.
    """
    block = random.Random(SEED).randbytes(PIECE)
    sent = 0
    counter = 0
    while sent < size:
        piece = counter.to_bytes(8, "big") + block[8:]
        piece = piece[: size - sent]
        digest.update(piece)
        sent += len(piece)
        counter += 1
        yield piece


async def main(size: int) -> None:
    config = load()
    db = Database(config.effective_database_url)
    blobs = open_blobs(config, db)
    # Connect once so the database driver is part of the baseline: it is
    # the same whatever the blob size, and not what is being measured.
    async with db.read() as conn:
        await conn.execute(text("SELECT 1"))

    baseline = status_bytes("VmRSS")
    resettable = reset_peak()
    sent = hashlib.sha256()
    began = time.monotonic()
    blob_id, stored = await blobs.put(generate(size, sent))
    write_seconds = time.monotonic() - began
    write_peak = status_bytes("VmHWM")

    reset_peak()
    got = hashlib.sha256()
    got_size = 0
    began = time.monotonic()
    async for chunk in await blobs.open(blob_id):
        got.update(chunk)
        got_size += len(chunk)
    read_seconds = time.monotonic() - began
    read_peak = status_bytes("VmHWM")

    await blobs.close()
    await db.close()
    result = {
        "sent_sha256": sent.hexdigest(),
        "id": blob_id,
        "size": stored,
        "read_sha256": got.hexdigest(),
        "read_size": got_size,
        "baseline_rss": baseline,
        "peak_reset": resettable,
        "write_peak_above": write_peak - baseline,
        "read_peak_above": read_peak - baseline,
        "write_seconds": round(write_seconds, 2),
        "read_seconds": round(read_seconds, 2),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
