"""Quota: checked and counted in one UPDATE, per recipient."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import update

from nubo.mail.mailstore import QuotaExceeded, Stored
from nubo.store.schema import users
from tests.mail.mailstore_rig import MailRig, check_invariants, message

GIB = 1024**3


async def test_one_recipient_over_quota_the_others_get_it(mail: MailRig) -> None:
    ann = await mail.user("ann", quota=5 * GIB)
    bob = await mail.user("bob", quota=20_000)
    cid = await mail.user("cid")  # unlimited
    raw = message(1, 15_000)
    first = await mail.store.deliver([bob], raw)
    assert isinstance(first[bob], Stored)

    results = await mail.store.deliver([ann, bob, cid], message(2, 15_000))

    assert isinstance(results[ann], Stored)
    assert isinstance(results[cid], Stored)
    refused = results[bob]
    assert isinstance(refused, QuotaExceeded)
    assert str(refused) == refused.reason == "mailbox full: 19.5K quota"
    assert not refused.temporary
    assert (await mail.store.usage(bob)) == (len(raw), 20_000)
    assert (await mail.store.status(first[bob].mailbox_id)).uidnext == 2
    assert (await mail.store.usage(ann))[1] == 5 * GIB
    await check_invariants(mail)


async def test_quota_reason_names_the_quota(mail: MailRig) -> None:
    ann = await mail.user("ann", quota=5 * GIB)
    async with mail.db.write() as conn:
        await conn.execute(
            update(users).where(users.c.id == ann).values(quota_bytes=1000)
        )
    results = await mail.store.deliver([ann], message(1, 2000))
    assert str(results[ann]) == "message larger than the 1000 quota"

    async with mail.db.write() as conn:
        await conn.execute(
            update(users).where(users.c.id == ann).values(quota_bytes=5 * GIB)
        )
    await mail.store.deliver([ann], message(2))
    used = (await mail.store.usage(ann))[0]
    async with mail.db.write() as conn:
        await conn.execute(
            update(users).where(users.c.id == ann).values(quota_bytes=used + 100)
        )
    results = await mail.store.deliver([ann], message(3))
    assert str(results[ann]) == f"mailbox full: {used + 100} quota"


async def test_exactly_full_is_allowed(mail: MailRig) -> None:
    raw = message(1, 3000)
    ann = await mail.user("ann", quota=2 * len(raw))

    assert isinstance((await mail.store.deliver([ann], raw))[ann], Stored)
    assert isinstance((await mail.store.deliver([ann], raw))[ann], Stored)
    assert isinstance((await mail.store.deliver([ann], b"x"))[ann], QuotaExceeded)
    assert (await mail.store.usage(ann))[0] == 2 * len(raw)


async def test_append_over_quota_raises(mail: MailRig) -> None:
    ann = await mail.user("ann", quota=100)
    await mail.store.ensure_mailboxes(ann)

    with pytest.raises(QuotaExceeded):
        await mail.store.append(ann, "Drafts", message(1, 500))
    with pytest.raises(QuotaExceeded):
        await mail.store.append_special(ann, "Sent", message(1, 500))
    await check_invariants(mail)


async def test_concurrent_deliveries_never_pass_the_quota(mail: MailRig) -> None:
    raw_size = len(message(0, 2000))
    ann = await mail.user("ann", quota=raw_size * 5 + 10)
    await mail.store.ensure_mailboxes(ann)

    results = await asyncio.gather(
        *(mail.store.deliver([ann], message(n, 2000)) for n in range(12))
    )

    stored = [r[ann] for r in results if isinstance(r[ann], Stored)]
    refused = [r[ann] for r in results if isinstance(r[ann], QuotaExceeded)]
    assert len(stored) == 5
    assert len(refused) == 7
    used, quota = await mail.store.usage(ann)
    assert used <= quota
    await check_invariants(mail)
