"""Blob store throughput: bytes and blobs per second, written and read back.

Runs the same measurements on both storage pairs, one after the other:
"embedded" (SQLite and a blob folder in a temporary folder) and "scale" (a
throwaway database on the PostgreSQL at ``NUBO_TEST_POSTGRES``, by default
``postgresql://postgres@127.0.0.1:5432/test``, dropped at the end, and a
``weed mini`` SeaweedFS started for the run). On each it times:

- one large blob (256 MiB by default) put as a stream of 1 MiB pieces, then
  read back as a stream;
- many small blobs (2000 of 50 KiB by default, the size of a mail message),
  put one after another, each durable before the next, then read back.

Every blob has distinct bytes, so deduplication saves nothing. Settings are
nubo's defaults (the 8 MiB S3 part size included). Reads follow the writes
at once, so on the folder backend they come from the page cache: they
measure nubo's read path, not the disk. Prints a table in MiB/s and blobs/s.

    python benchmarks/blob_throughput.py [--size-mb 256] [--count 2000]
                                         [--small-kb 50]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import pairs
from nubo.config import load
from nubo.store.blobs import Blobs, open_blobs
from nubo.store.database import Database
from nubo.store.migrate import upgrade

MIB = 1024 * 1024
PIECE = MIB


@dataclass(frozen=True)
class Result:
    """One timed workload on one pair: how much, and seconds each way."""

    pair: str
    workload: str
    blobs: int
    size: int  # bytes in all
    write_seconds: float
    read_seconds: float


def distinct(block: bytes, number: int) -> bytes:
    """``block`` with ``number`` in its first 8 bytes: distinct contents at
    the cost of a copy, not of a random generator."""
    return number.to_bytes(8, "big") + block[8:]


async def pieces(block: bytes, size: int) -> AsyncIterator[bytes]:
    sent = 0
    number = 0
    while sent < size:
        piece = distinct(block, number)[: size - sent]
        sent += len(piece)
        number += 1
        yield piece


async def drain(blobs: Blobs, blob_id: str) -> int:
    size = 0
    async for chunk in await blobs.open(blob_id):
        size += len(chunk)
    return size


async def large(pair: str, blobs: Blobs, size: int) -> Result:
    block = random.Random(1).randbytes(PIECE)
    began = time.perf_counter()
    blob_id, stored = await blobs.put(pieces(block, size))
    written = time.perf_counter() - began
    assert stored == size, stored

    began = time.perf_counter()
    got = await drain(blobs, blob_id)
    read = time.perf_counter() - began
    assert got == size, got
    return Result(pair, f"1 x {size // MIB} MiB", 1, size, written, read)


async def small(pair: str, blobs: Blobs, count: int, size: int) -> Result:
    block = random.Random(2).randbytes(size)
    ids: list[str] = []
    began = time.perf_counter()
    for number in range(count):
        blob_id, _ = await blobs.put_bytes(distinct(block, number))
        ids.append(blob_id)
    written = time.perf_counter() - began

    began = time.perf_counter()
    for blob_id in ids:
        data = await blobs.read_bytes(blob_id)
        assert len(data) == size, len(data)
    read = time.perf_counter() - began
    label = f"{count} x {size // 1024} KiB"
    return Result(pair, label, count, count * size, written, read)


async def measure(
    pair: str, settings: dict[str, object], args: argparse.Namespace
) -> list[Result]:
    config = load(environ={}).replace(**settings)
    db = Database(config.effective_database_url)
    try:
        await upgrade(db)
        blobs = open_blobs(config, db)
        try:
            # Connections, thread pools and the first S3 request's setup are
            # paid here rather than in the first timed put.
            await blobs.put_bytes(b"warm-up")
            return [
                await large(pair, blobs, args.size_mb * MIB),
                await small(pair, blobs, args.count, args.small_kb * 1024),
            ]
        finally:
            await blobs.close()
    finally:
        await db.close()


def table(results: list[Result]) -> str:
    head = (
        "pair",
        "workload",
        "write MiB/s",
        "write blobs/s",
        "read MiB/s",
        "read blobs/s",
    )
    rows = [head]
    for r in results:
        rows.append(
            (
                r.pair,
                r.workload,
                f"{r.size / MIB / r.write_seconds:.1f}",
                f"{r.blobs / r.write_seconds:.1f}",
                f"{r.size / MIB / r.read_seconds:.1f}",
                f"{r.blobs / r.read_seconds:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = []
    for row in rows:
        cells = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=256, help="large blob, MiB")
    parser.add_argument("--count", type=int, default=2000, help="small blobs")
    parser.add_argument("--small-kb", type=int, default=50, help="small blob, KiB")
    args = parser.parse_args()

    def run(pair: str, settings: dict[str, object]) -> Awaitable[list[Result]]:
        return measure(pair, settings, args)

    results = pairs.embedded(run) + pairs.scale(run)
    print(table(results))


if __name__ == "__main__":
    main()
