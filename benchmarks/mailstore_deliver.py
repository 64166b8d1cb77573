"""Mailstore deliveries per second: 10 KB messages into one INBOX.

Runs on both storage pairs, one after the other: "embedded" (SQLite and a
blob folder in a temporary folder) and "scale" (a throwaway database on the
PostgreSQL at ``NUBO_TEST_POSTGRES``, by default
``postgresql://postgres@127.0.0.1:5432/test``, dropped at the end, and a
``weed mini`` SeaweedFS started for the run). On each it times:

- ``put only``: ``Blobs.put_bytes`` of the same messages, the floor below
  the mailstore (bytes durable, blob row committed);
- ``sequential``: ``Mailstore.deliver`` one message after another, each
  durable (bytes, row, UID, MODSEQ, quota, blob reference) before the next;
- ``8 concurrent``: eight deliveries in flight at a time, all into the same
  INBOX, so they contend for its row lock (UID and MODSEQ allocation);
- ``read flags``: one ``messages(with_info=False)`` of the whole INBOX,
  what an IMAP ``FETCH 1:* FLAGS`` costs, in messages per second.

Every message has distinct bytes. The user has a quota, so each delivery
pays for the quota check. Durability settings are nubo's defaults
(SQLite ``synchronous=FULL`` in WAL mode).

    python benchmarks/mailstore_deliver.py [--count 2000] [--size-kb 10]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import pairs
from nubo.accounts import Accounts
from nubo.config import load
from nubo.mail.mailstore import Mailstore, Stored
from nubo.store.blobs import open_blobs
from nubo.store.database import Database
from nubo.store.events import LocalBus
from nubo.store.migrate import upgrade

CONCURRENCY = 8


@dataclass(frozen=True)
class Result:
    pair: str
    workload: str
    count: int
    seconds: float


class Messages:
    """Distinct 10 KB messages: a header with a serial, a fixed body."""

    def __init__(self, size: int) -> None:
        line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do.\r\n"
        self.body = (line * (size // len(line) + 1))[: size - 300]
        self.serial = 0

    def next(self) -> bytes:
        self.serial += 1
        head = (
            f"From: Ann <ann@example.net>\r\nTo: bob@example.org\r\n"
            f"Subject: benchmark {self.serial}\r\n"
            f"Date: Mon, 2 Mar 2026 10:00:00 +0100\r\n"
            f"Message-ID: <{self.serial}.{uuid.uuid4().hex}@example.net>\r\n\r\n"
        ).encode()
        return head + self.body


async def timed_deliveries(
    store: Mailstore, user: int, messages: Messages, count: int, width: int
) -> float:
    gate = asyncio.Semaphore(width)

    async def one() -> None:
        async with gate:
            result = (await store.deliver([user], messages.next()))[user]
        assert isinstance(result, Stored), result

    began = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    return time.perf_counter() - began


async def measure(
    pair: str, settings: dict[str, object], args: argparse.Namespace
) -> list[Result]:
    config = load(environ={}).replace(
        password_time_cost=1, password_memory_kib=8, **settings
    )
    db = Database(config.effective_database_url)
    try:
        await upgrade(db)
        blobs = open_blobs(config, db)
        try:
            accounts = Accounts(db, config)
            await accounts.add_domain("example.org")
            user = await accounts.add_user(
                "bob@example.org", "benchmark password", quota_bytes=10 * 1024**3
            )
            store = Mailstore(db, blobs, LocalBus())
            messages = Messages(args.size_kb * 1000)
            # Connections, thread pools and the mailboxes are made here,
            # not in the first timed delivery.
            await store.deliver([user.id], messages.next())

            began = time.perf_counter()
            for _ in range(args.count):
                await blobs.put_bytes(messages.next())
            put = time.perf_counter() - began

            sequential = await timed_deliveries(store, user.id, messages, args.count, 1)
            concurrent = await timed_deliveries(
                store, user.id, messages, args.count, CONCURRENCY
            )

            inbox = await store.get_mailbox(user.id, "INBOX")
            began = time.perf_counter()
            rows = await store.messages(inbox.id, with_info=False)
            read = time.perf_counter() - began
            assert len(rows) == 2 * args.count + 1
            assert [r.uid for r in rows] == list(range(1, len(rows) + 1))

            return [
                Result(pair, "put only", args.count, put),
                Result(pair, "sequential", args.count, sequential),
                Result(pair, f"{CONCURRENCY} concurrent", args.count, concurrent),
                Result(pair, "read flags", len(rows), read),
            ]
        finally:
            await blobs.close()
    finally:
        await db.close()


def table(results: list[Result]) -> str:
    rows = [("pair", "workload", "count", "seconds", "per second")]
    for r in results:
        rows.append(
            (
                r.pair,
                r.workload,
                str(r.count),
                f"{r.seconds:.2f}",
                f"{r.count / r.seconds:.0f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="messages per run")
    parser.add_argument("--size-kb", type=int, default=10, help="message size, KB")
    args = parser.parse_args()

    def run(pair: str, settings: dict[str, object]) -> Awaitable[list[Result]]:
        return measure(pair, settings, args)

    results = pairs.embedded(run) + pairs.scale(run)
    print(table(results))


if __name__ == "__main__":
    main()
