"""A delivering process for the mailstore's multi-process tests.

Run as ``python mailstore_writer.py MODE USER_IDS COUNT`` with the storage
pair in ``NUBO_*`` variables; USER_IDS is comma-separated. It prints
"ready" once the store is open, then:

- ``deliver``: delivers COUNT messages (8 at a time) to the users, printing
  one line "uid modseq" per delivery to the first user, and exits;
- ``churn``: delivers, flags, copies and expunges forever, until SIGKILL.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys

from nubo.config import load
from nubo.mail.mailstore import Mailstore, Stored
from nubo.store.blobs import open_blobs
from nubo.store.database import Database
from nubo.store.events import LocalBus


def body(n: int, rng: random.Random) -> bytes:
    head = f"From: w@example.net\r\nSubject: {n} {os.getpid()}\r\n\r\n".encode()
    return head + os.urandom(rng.randrange(100, 20_000)).hex().encode()


async def deliver(store: Mailstore, users: list[int], count: int) -> None:
    rng = random.Random()
    gate = asyncio.Semaphore(8)

    async def one(n: int) -> None:
        async with gate:
            result = (await store.deliver(users, body(n, rng)))[users[0]]
        assert isinstance(result, Stored), result
        print(result.uid, result.modseq, flush=True)

    await asyncio.gather(*(one(n) for n in range(count)))


async def churn(store: Mailstore, users: list[int]) -> None:
    rng = random.Random()
    n = 0
    while True:
        n += 1
        await store.deliver(users, body(n, rng))
        user = rng.choice(users)
        inbox = await store.get_mailbox(user, "INBOX")
        uids = await store.uids(inbox.id)
        if not uids:
            continue
        picked = rng.sample(uids, min(len(uids), 3))
        roll = rng.random()
        if roll < 0.3:
            await store.store_flags(inbox.id, picked, "add", ["\\Deleted"])
            await store.expunge(inbox.id)
        elif roll < 0.5:
            archive = await store.get_mailbox(user, "Archive")
            await store.copy(inbox.id, picked, archive.id)
        elif roll < 0.6:
            trash = await store.get_mailbox(user, "Trash")
            await store.move(inbox.id, picked, trash.id)


async def main(mode: str, users: list[int], count: int) -> None:
    config = load()
    db = Database(config.effective_database_url)
    blobs = open_blobs(config, db)
    store = Mailstore(db, blobs, LocalBus())
    print("ready", flush=True)
    try:
        if mode == "deliver":
            await deliver(store, users, count)
        else:
            await churn(store, users)
    finally:
        await blobs.close()
        await db.close()


if __name__ == "__main__":
    asyncio.run(
        main(sys.argv[1], [int(u) for u in sys.argv[2].split(",")], int(sys.argv[3]))
    )
