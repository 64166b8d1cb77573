"""UIDs under concurrency, in one process and across processes, and a
process killed mid-delivery (DESIGN.md, Durability)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path

import pytest

from nubo.mail.mailstore import Stored
from tests.mail.mailstore_rig import MailRig, check_invariants, message

WRITER = Path(__file__).with_name("mailstore_writer.py")


def writer_env(rig: MailRig) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUBO_")}
    env.update(rig.env)
    return env


async def start_writer(rig: MailRig, *args: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WRITER),
        *args,
        env=writer_env(rig),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert line == b"ready\n", line
    return proc


async def test_concurrent_deliveries_get_unique_increasing_uids(
    mail: MailRig,
) -> None:
    ann, bob = await mail.user("ann"), await mail.user("bob")
    await mail.store.ensure_mailboxes(ann)

    results = await asyncio.gather(
        *(mail.store.deliver([ann, bob], message(n)) for n in range(60))
    )

    for user in (ann, bob):
        stored = [r[user] for r in results]
        assert all(isinstance(s, Stored) for s in stored)
        uids = [s.uid for s in stored if isinstance(s, Stored)]
        modseqs = [s.modseq for s in stored if isinstance(s, Stored)]
        assert sorted(uids) == list(range(1, 61))
        assert len(set(modseqs)) == 60
        # A later UID always came with a later MODSEQ.
        assert sorted(zip(uids, modseqs, strict=True)) == sorted(
            zip(sorted(uids), sorted(modseqs), strict=True)
        )
        inbox = await mail.store.get_mailbox(user, "INBOX")
        assert await mail.store.uids(inbox.id) == list(range(1, 61))
        assert inbox.uidnext == 61
    await check_invariants(mail)


async def test_mixed_concurrent_changes_keep_the_books(mail: MailRig) -> None:
    """Deliveries, flags, copies, moves and expunges at once: no deadlock
    (PostgreSQL locks in one order) and exact accounting."""
    ann = await mail.user("ann")
    await mail.store.ensure_mailboxes(ann)
    inbox = (await mail.store.get_mailbox(ann, "INBOX")).id
    archive = (await mail.store.get_mailbox(ann, "Archive")).id
    for n in range(20):
        await mail.store.deliver([ann], message(n))
    rng = random.Random(7)

    async def worker(k: int) -> None:
        for n in range(10):
            picked = rng.sample(range(1, 40), 4)
            step = (k + n) % 5
            if step == 0:
                await mail.store.deliver([ann], message(100 * k + n))
            elif step == 1:
                await mail.store.store_flags(inbox, picked, "add", ["\\Deleted"])
            elif step == 2:
                await mail.store.copy(inbox, picked, archive)
            elif step == 3:
                await mail.store.move(archive, picked, inbox)
            else:
                await mail.store.expunge(inbox, picked)

    await asyncio.gather(*(worker(k) for k in range(8)))
    await check_invariants(mail)


@pytest.mark.slow
async def test_two_processes_deliver_into_one_inbox(mail: MailRig) -> None:
    ann = await mail.user("ann")
    await mail.store.ensure_mailboxes(ann)
    count = 150

    procs = [await start_writer(mail, "deliver", str(ann), str(count)) for _ in "ab"]
    outputs = await asyncio.gather(*(p.communicate() for p in procs))

    seen: list[tuple[int, int]] = []
    for proc, (out, _) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0
        pairs = [tuple(map(int, line.split())) for line in out.decode().splitlines()]
        assert len(pairs) == count
        seen.extend((uid, modseq) for uid, modseq in pairs)
    uids = sorted(uid for uid, _ in seen)
    assert uids == list(range(1, 2 * count + 1))
    assert len({modseq for _, modseq in seen}) == 2 * count
    inbox = await mail.store.get_mailbox(ann, "INBOX")
    assert await mail.store.uids(inbox.id) == uids
    await check_invariants(mail)


@pytest.mark.slow
async def test_a_killed_process_leaves_no_row_without_bytes(mail: MailRig) -> None:
    ann, bob = await mail.user("ann"), await mail.user("bob")
    for user in (ann, bob):
        await mail.store.ensure_mailboxes(user)
    rng = random.Random()

    for _ in range(4):
        proc = await start_writer(mail, "churn", f"{ann},{bob}", "0")
        await asyncio.sleep(rng.uniform(0.3, 1.5))
        assert proc.returncode is None, "the writer stopped on its own"
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        assert proc.returncode == -signal.SIGKILL

        # Every committed row has its bytes; usage and refcounts are exact.
        await check_invariants(mail)

    inbox = await mail.store.get_mailbox(ann, "INBOX")
    assert inbox.uidnext > 1
    # The store goes on: a new delivery gets the next UID.
    stored = (await mail.store.deliver([ann], message(1)))[ann]
    assert isinstance(stored, Stored)
    assert stored.uid == inbox.uidnext
