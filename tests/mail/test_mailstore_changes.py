"""COPY, MOVE, EXPUNGE: UID maps, expunge records, quota, MODSEQ, events."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite

from nubo.mail.mailstore import NoSuchMailbox, QuotaExceeded, Stored, service
from tests.mail.mailstore_rig import MailRig, check_invariants, drain, message


async def filled(mail: MailRig, count: int = 5, quota: int = 0) -> tuple[int, int, int]:
    """(user, INBOX id, Archive id) with ``count`` messages in INBOX."""
    ann = await mail.user("ann", quota=quota)
    for n in range(count):
        stored = (await mail.store.deliver([ann], message(n, 1000)))[ann]
        assert isinstance(stored, Stored)
    inbox = await mail.store.get_mailbox(ann, "INBOX")
    archive = await mail.store.get_mailbox(ann, "Archive")
    return ann, inbox.id, archive.id


async def test_copy_keeps_flags_and_dates_and_counts_quota(mail: MailRig) -> None:
    ann, inbox, archive = await filled(mail)
    await mail.store.store_flags(inbox, [2, 4], "add", ["\\Seen", "$Work"])
    used = (await mail.store.usage(ann))[0]
    await mail.store.append(ann, "Archive", message(99))  # archive UID 1

    pairs = await mail.store.copy(inbox, [4, 2, 5, 77], archive)

    assert pairs == [(2, 2), (4, 3), (5, 4)]
    source = {r.uid: r for r in await mail.store.messages(inbox)}
    copies = {r.uid: r for r in await mail.store.messages(archive)}
    for old, new in pairs:
        assert copies[new].flags == source[old].flags
        assert copies[new].internal_date == source[old].internal_date
        assert copies[new].blob_id == source[old].blob_id
        assert copies[new].info_json == source[old].info_json
    assert len({copies[new].modseq for _, new in pairs}) == 1
    assert await mail.store.uids(inbox) == [1, 2, 3, 4, 5]  # source unchanged
    copied = sum(source[old].size for old, _ in pairs)
    assert (await mail.store.usage(ann))[0] == used + copied + len(message(99))
    assert (await mail.store.search_index(archive, [2]))[2] == (
        await mail.store.search_index(inbox, [2])
    )[2]
    await check_invariants(mail)


async def test_copy_into_the_same_mailbox(mail: MailRig) -> None:
    _, inbox, _ = await filled(mail, 2)

    assert await mail.store.copy(inbox, [1, 2], inbox) == [(1, 3), (2, 4)]
    assert await mail.store.uids(inbox) == [1, 2, 3, 4]
    await check_invariants(mail)


async def test_copy_over_quota_is_refused_whole(mail: MailRig) -> None:
    _, inbox, archive = await filled(mail, 3, quota=5000)

    with pytest.raises(QuotaExceeded):
        await mail.store.copy(inbox, [1, 2, 3], archive)

    assert await mail.store.uids(archive) == []
    assert (await mail.store.status(archive)).uidnext == 1  # no UID was spent
    await check_invariants(mail)


async def test_move_gives_new_uids_and_records_the_expunge(mail: MailRig) -> None:
    ann, inbox, archive = await filled(mail)
    await mail.store.store_flags(inbox, [3], "add", ["\\Flagged"])
    before = await mail.store.status(inbox)
    rows = {r.uid: r for r in await mail.store.messages(inbox)}
    used = await mail.store.usage(ann)

    with mail.bus.subscribe(f"mailbox:{inbox}", f"mailbox:{archive}") as sub:
        pairs = await mail.store.move(inbox, [3, 1, 42], archive)
        events = drain(sub)

    assert pairs == [(1, 1), (3, 2)]
    assert await mail.store.uids(inbox) == [2, 4, 5]
    moved = {r.uid: r for r in await mail.store.messages(archive)}
    assert moved[2].flags == {"\\Flagged"}
    assert moved[2].blob_id == rows[3].blob_id
    assert moved[1].internal_date == rows[1].internal_date
    after = await mail.store.status(inbox)
    assert after.highestmodseq == before.highestmodseq + 1
    assert await mail.store.vanished(inbox, before.highestmodseq) == [1, 3]
    assert await mail.store.vanished(inbox, after.highestmodseq) == []
    assert await mail.store.usage(ann) == used
    assert sorted(e.topic for e in events) == sorted(
        [f"mailbox:{inbox}", f"mailbox:{archive}"]
    )
    await check_invariants(mail)


async def test_move_within_one_mailbox(mail: MailRig) -> None:
    _, inbox, _ = await filled(mail, 3)

    assert await mail.store.move(inbox, [1], inbox) == [(1, 4)]

    assert await mail.store.uids(inbox) == [2, 3, 4]
    assert await mail.store.vanished(inbox, 0) == [1]
    await check_invariants(mail)


async def test_copy_and_move_stay_within_one_user(mail: MailRig) -> None:
    _, inbox, _ = await filled(mail, 1)
    bob = await mail.user("bob")
    await mail.store.ensure_mailboxes(bob)
    theirs = (await mail.store.get_mailbox(bob, "INBOX")).id

    with pytest.raises(NoSuchMailbox):
        await mail.store.copy(inbox, [1], theirs)
    with pytest.raises(NoSuchMailbox):
        await mail.store.move(inbox, [1], theirs)
    with pytest.raises(NoSuchMailbox):
        await mail.store.move(inbox, [1], theirs + 1000)
    assert await mail.store.uids(theirs) == []


async def test_expunge_removes_deleted_and_frees_quota(mail: MailRig) -> None:
    ann, inbox, _ = await filled(mail)
    rows = {r.uid: r for r in await mail.store.messages(inbox)}
    await mail.store.store_flags(inbox, [2, 3, 5], "add", ["\\Deleted"])
    used = (await mail.store.usage(ann))[0]
    before = await mail.store.status(inbox)

    # UID EXPUNGE (RFC 4315 §2.1): only among the UIDs given.
    assert await mail.store.expunge(inbox, [3, 4]) == [3]
    assert await mail.store.expunge(inbox, []) == []
    assert await mail.store.uids(inbox) == [1, 2, 4, 5]

    with mail.bus.subscribe(f"mailbox:{inbox}") as sub:
        assert await mail.store.expunge(inbox) == [2, 5]
        assert [e.data for e in drain(sub)] == [{"modseq": before.highestmodseq + 2}]

    assert await mail.store.uids(inbox) == [1, 4]
    freed = rows[2].size + rows[3].size + rows[5].size
    assert (await mail.store.usage(ann))[0] == used - freed
    assert await mail.store.vanished(inbox, before.highestmodseq) == [2, 3, 5]
    assert await mail.store.vanished(inbox, before.highestmodseq + 1) == [2, 5]
    assert await mail.store.expunge(inbox) == []  # nothing left: no change
    assert (await mail.store.status(inbox)).highestmodseq == before.highestmodseq + 2
    await check_invariants(mail)


async def test_expunged_uids_are_never_given_again(mail: MailRig) -> None:
    ann, inbox, _ = await filled(mail, 3)
    await mail.store.store_flags(inbox, [1, 2, 3], "add", ["\\Deleted"])
    await mail.store.expunge(inbox)

    stored = (await mail.store.deliver([ann], message(10)))[ann]

    assert isinstance(stored, Stored)
    assert stored.uid == 4


async def test_a_shared_blob_survives_until_its_last_copy(mail: MailRig) -> None:
    ann, inbox, archive = await filled(mail, 1)
    blob_id = (await mail.store.messages(inbox))[0].blob_id
    await mail.store.copy(inbox, [1], archive)
    await mail.store.store_flags(inbox, [1], "add", ["\\Deleted"])
    await mail.store.expunge(inbox)

    assert (await mail.store.read_message(blob_id)).startswith(b"From: Ann")
    await check_invariants(mail)

    await mail.store.store_flags(archive, [1], "add", ["\\Deleted"])
    await mail.store.expunge(archive)
    await check_invariants(mail)
    assert (await mail.store.usage(ann))[0] == 0


async def test_every_change_bumps_modseq_and_publishes(mail: MailRig) -> None:
    """Each kind of change: one new HIGHESTMODSEQ, one event after commit."""
    ann = await mail.user("ann")
    await mail.store.ensure_mailboxes(ann)
    inbox = (await mail.store.get_mailbox(ann, "INBOX")).id
    trash = (await mail.store.get_mailbox(ann, "Trash")).id
    await mail.store.append(ann, "Trash", message(3))
    seen: list[int] = []

    async def change(action: Awaitable[object]) -> None:
        with mail.bus.subscribe(f"mailbox:{inbox}") as sub:
            await action
            events = drain(sub)
        modseq = (await mail.store.status(inbox)).highestmodseq
        assert [e.data for e in events] == [{"modseq": modseq}]
        assert not seen or modseq > seen[-1]
        seen.append(modseq)

    await change(mail.store.deliver([ann], message(1)))
    await change(mail.store.append(ann, "INBOX", message(2)))
    await change(mail.store.store_flags(inbox, [1], "add", ["\\Deleted"]))
    await change(mail.store.copy(trash, [1], inbox))
    await change(mail.store.move(inbox, [2], trash))
    await change(mail.store.expunge(inbox))
    await change(mail.store.rename_mailbox(ann, "INBOX", "Old"))
    assert len(seen) == 7


async def test_changes_since_a_modseq_in_one_read(mail: MailRig) -> None:
    ann, inbox, archive = await filled(mail, 4)
    before = await mail.store.get_mailbox_by_id(inbox)

    assert await mail.store.changes(inbox, before.highestmodseq) == (before, [], [])

    await mail.store.store_flags(inbox, [2], "add", ["\\Flagged"])
    await mail.store.move(inbox, [3], archive)
    await mail.store.deliver([ann], message(9))
    box, gone, changed = await mail.store.changes(inbox, before.highestmodseq)

    assert box.highestmodseq > before.highestmodseq
    assert gone == [3]
    assert [row.uid for row in changed] == [2, 5]
    assert "\\Flagged" in changed[0].flags
    assert all(row.modseq > before.highestmodseq for row in changed)
    with pytest.raises(NoSuchMailbox):
        await mail.store.changes(10_000, 0)


@pytest.mark.parametrize(
    ("statement", "index"),
    [
        (service._CHANGED_SINCE, "ix_messages_mailbox_id_modseq"),
        (service._EXPUNGED_SINCE, "ix_expunged_mailbox_id_modseq"),
    ],
)
async def test_sync_reads_by_the_modseq_indexes(
    mail: MailRig, statement: Any, index: str
) -> None:
    # Every command of every session runs these: walking the whole mailbox
    # by UID instead (as SQLite chose with ORDER BY uid) costs 2.6 ms per
    # 10,000 messages.
    if mail.kind != "embedded":
        pytest.skip("the plan checked is SQLite's")
    sql = str(statement.compile(dialect=sqlite.dialect()))
    async with mail.db.read() as conn:
        plan = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, (1, 5))
        details = " ".join(str(row[-1]) for row in plan)
    assert f"USING INDEX {index} (mailbox_id=? AND modseq>?)" in details
