"""Messages in and out of the mailstore: bytes exact, parsed once, counted."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from nubo.mail.mailstore import (
    InvalidFlag,
    NoSuchMailbox,
    Stored,
    TemporaryFailure,
    UnknownUser,
)
from nubo.mail.mailstore.service import PARSE_IN_THREAD
from nubo.mail.message import MessageInfo
from nubo.store.blobs import BlobStoreError
from nubo.store.events import EventError
from nubo.store.schema import blobs as blobs_table
from tests.mail.mailstore_rig import MailRig, check_invariants, message

MESSAGES = Path(__file__).with_name("messages")
REALWORLD = Path("/work/shared/realworld")


def samples() -> list[tuple[str, bytes]]:
    """Every sample message, the real-world ones, and a few hostile ones."""
    found = [(p.name, p.read_bytes()) for p in sorted(MESSAGES.glob("*.eml"))]
    found += [(p.name, p.read_bytes()) for p in sorted(REALWORLD.glob("MAIL-05_*"))]
    found += [
        ("nul-everywhere", b"Subject: a\x00b\r\nX: \x00\r\n\r\nbody\x00\x00\r\n"),
        ("bare-lf", b"Subject: lf\nFrom: a@b\n\nline\nline\n.\nend"),
        ("8bit", b"Subject: \xff\xfe\x80 caf\xe9\r\n\r\n\xc3\x28\xa0\xa1\r\n"),
        ("no-trailing-newline", b"Subject: x\r\n\r\nno newline at end"),
        ("all-bytes", bytes(range(256)) * 8),
    ]
    return found


async def test_every_sample_round_trips_byte_for_byte(mail: MailRig) -> None:
    user = await mail.user("ann")
    results: list[tuple[str, bytes, Stored]] = []
    for name, raw in samples():
        stored = (await mail.store.deliver([user], raw))[user]
        assert isinstance(stored, Stored), name
        results.append((name, raw, stored))

    inbox = await mail.store.get_mailbox(user, "INBOX")
    rows = {row.uid: row for row in await mail.store.messages(inbox.id)}
    for name, raw, stored in results:
        assert stored.size == len(raw), name
        assert stored.blob_id == hashlib.sha256(raw).hexdigest(), name
        assert await mail.store.read_message(stored.blob_id) == raw, name
        streamed = b"".join(
            [chunk async for chunk in await mail.store.open_message(stored.blob_id)]
        )
        assert streamed == raw, name
        row = rows[stored.uid]
        assert row.size == len(raw)
        assert row.info.size == len(raw), name  # the structure covers the bytes
    await check_invariants(mail)


async def test_delivery_to_several_users_stores_the_bytes_once(mail: MailRig) -> None:
    ann, bob, cid = [await mail.user(n) for n in ("ann", "bob", "cid")]
    raw = message(1, 10_000)

    results = await mail.store.deliver([ann, bob, cid, bob], raw)

    assert set(results) == {ann, bob, cid}  # bob listed twice, delivered once
    stored = [results[u] for u in (ann, bob, cid)]
    assert all(isinstance(s, Stored) for s in stored)
    assert {s.blob_id for s in stored if isinstance(s, Stored)} == {
        hashlib.sha256(raw).hexdigest()
    }
    async with mail.db.read() as conn:
        refcounts = (await conn.execute(select(blobs_table.c.refcount))).scalars().all()
    assert refcounts == [3]
    for user in (ann, bob, cid):
        inbox = await mail.store.get_mailbox(user, "inbox")
        assert await mail.store.uids(inbox.id) == [1]
        assert (await mail.store.usage(user))[0] == len(raw)
    await check_invariants(mail)


async def test_first_delivery_creates_the_default_mailboxes(mail: MailRig) -> None:
    ann = await mail.user("ann")
    assert await mail.store.list_mailboxes(ann) == []

    stored = (await mail.store.deliver([ann], message()))[ann]

    assert isinstance(stored, Stored)
    names = [box.name for box in await mail.store.list_mailboxes(ann)]
    assert names == ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"]
    assert stored.uid == 1
    assert (
        stored.uidvalidity == (await mail.store.get_mailbox(ann, "INBOX")).uidvalidity
    )


async def test_unknown_user_gets_an_error_of_its_own(mail: MailRig) -> None:
    ann = await mail.user("ann")

    results = await mail.store.deliver([ann, 999_999], message())

    assert isinstance(results[ann], Stored)
    assert isinstance(results[999_999], UnknownUser)
    await check_invariants(mail)


async def test_append_keeps_flags_keywords_and_internal_date(mail: MailRig) -> None:
    ann = await mail.user("ann")
    await mail.store.ensure_mailboxes(ann)
    when = datetime(2025, 12, 24, 18, 30, 5, tzinfo=timezone(timedelta(hours=2)))

    stored = await mail.store.append(
        ann,
        "Drafts",
        message(7),
        flags=["\\draft", "\\SEEN", "$Forwarded", "\\Recent", "$forwarded"],
        internal_date=when,
    )

    rows = await mail.store.messages(stored.mailbox_id)
    assert len(rows) == 1
    row = rows[0]
    assert row.uid == stored.uid == 1
    assert row.flags == {"\\Draft", "\\Seen", "$Forwarded"}
    assert row.internal_date == when
    assert row.internal_date.tzinfo is not None
    assert row.sent_date == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert row.modseq == stored.modseq


async def test_append_to_a_missing_mailbox_is_refused(mail: MailRig) -> None:
    ann = await mail.user("ann")
    await mail.store.ensure_mailboxes(ann)

    with pytest.raises(NoSuchMailbox):
        await mail.store.append(ann, "Nowhere", message())
    with pytest.raises(InvalidFlag):
        await mail.store.append(ann, "INBOX", message(), flags=["\\Bogus"])
    with pytest.raises(InvalidFlag):
        await mail.store.append(ann, "INBOX", message(), flags=["bad(keyword"])

    await check_invariants(mail)


async def test_append_special_finds_the_sent_mailbox(mail: MailRig) -> None:
    ann = await mail.user("ann")
    await mail.store.ensure_mailboxes(ann)
    await mail.store.rename_mailbox(ann, "Sent", "Sent Items")

    stored = await mail.store.append_special(ann, "\\Sent", message())

    box = await mail.store.get_mailbox(ann, "Sent Items")
    assert stored.mailbox_id == box.id
    assert box.special_use == "Sent"
    assert (await mail.store.messages(box.id))[0].flags == {"\\Seen"}


async def test_append_special_creates_the_defaults_when_missing(mail: MailRig) -> None:
    ann = await mail.user("ann")

    stored = await mail.store.append_special(ann, "Sent", message())

    assert stored.mailbox_id == (await mail.store.get_mailbox(ann, "Sent")).id


async def test_structure_and_search_text_are_kept(mail: MailRig) -> None:
    ann = await mail.user("ann")
    raw = (MESSAGES / "encoded_words.eml").read_bytes()
    stored = (await mail.store.deliver([ann], raw))[ann]
    assert isinstance(stored, Stored)

    row = (await mail.store.messages(stored.mailbox_id, uids=[stored.uid]))[0]
    assert isinstance(row.info, MessageInfo)
    assert row.info.to_json() == row.info_json

    index = await mail.store.search_index(stored.mailbox_id)
    assert set(index) == {stored.uid}
    assert "subject" in index[stored.uid]
    assert index[stored.uid]["subject"] == index[stored.uid]["subject"].lower()

    light = await mail.store.messages(stored.mailbox_id, with_info=False)
    assert light[0].info_json == ""
    assert light[0].flags == row.flags


async def test_messages_selects_by_uid_and_modseq(mail: MailRig) -> None:
    ann = await mail.user("ann")
    stored = []
    for n in range(12):
        result = (await mail.store.deliver([ann], message(n)))[ann]
        assert isinstance(result, Stored)
        stored.append(result)
    box = stored[0].mailbox_id

    # Runs, single UIDs and UIDs that do not exist.
    wanted = [1, 2, 3, 4, 7, 9, 10, 11, 12, 40, 0]
    rows = await mail.store.messages(box, uids=wanted)
    assert [row.uid for row in rows] == [1, 2, 3, 4, 7, 9, 10, 11, 12]
    assert await mail.store.messages(box, uids=[]) == []

    since = stored[8].modseq
    rows = await mail.store.messages(box, changed_since=since)
    assert [row.uid for row in rows] == [10, 11, 12]


async def test_many_uids_are_selected_in_chunks(mail: MailRig) -> None:
    """More UIDs than one SQL statement may bind (SQLite and asyncpg both
    stop near 32,767 parameters)."""
    ann = await mail.user("ann")
    stored = (await mail.store.deliver([ann], message()))[ann]
    assert isinstance(stored, Stored)

    odd = list(range(1, 80_001, 2))
    rows = await mail.store.messages(stored.mailbox_id, uids=odd)

    assert [row.uid for row in rows] == [1]


async def test_sent_date_out_of_range_is_dropped(mail: MailRig) -> None:
    ann = await mail.user("ann")
    raw = b"Date: Fri, 31 Dec 9999 23:00:00 -1200\r\nSubject: late\r\n\r\nx\r\n"

    stored = (await mail.store.deliver([ann], raw))[ann]

    assert isinstance(stored, Stored)
    row = (await mail.store.messages(stored.mailbox_id))[0]
    assert row.sent_date is None


async def test_a_large_message_is_parsed_off_the_loop_and_kept_exact(
    mail: MailRig,
) -> None:
    ann = await mail.user("ann")
    part = b"--b\r\nContent-Type: application/octet-stream\r\n\r\n"
    raw = (
        b"Subject: big\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        + part
        + bytes(range(256)) * 12_000
        + b"\r\n--b--\r\n"
    )
    assert len(raw) > PARSE_IN_THREAD

    stored = (await mail.store.deliver([ann], raw))[ann]

    assert isinstance(stored, Stored)
    assert await mail.store.read_message(stored.blob_id) == raw
    row = (await mail.store.messages(stored.mailbox_id))[0]
    assert row.info.structure.subtype == "mixed"
    assert row.info.size == len(raw)


async def test_store_failures_are_temporary_per_recipient(
    mail: MailRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann, bob = await mail.user("ann"), await mail.user("bob")
    await mail.store.ensure_mailboxes(bob)

    async def broken_put(data: bytes) -> tuple[str, int]:
        raise BlobStoreError("disk on fire")

    with monkeypatch.context() as patch:
        patch.setattr(mail.blobs, "put_bytes", broken_put)
        results = await mail.store.deliver([ann, bob], message())
    assert all(
        isinstance(r, TemporaryFailure) and r.temporary for r in results.values()
    )

    # The metadata store failing for one user only.
    original = mail.store._add

    async def failing_for_bob(user_id: int, *args: object) -> Stored:
        if user_id == bob:
            raise OperationalError("UPDATE", {}, Exception("database is locked"))
        return await original(user_id, *args)  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        patch.setattr(mail.store, "_add", failing_for_bob)
        results = await mail.store.deliver([ann, bob], message())
    assert isinstance(results[ann], Stored)
    assert isinstance(results[bob], TemporaryFailure)
    await check_invariants(mail)


async def test_a_failing_event_bus_does_not_undo_the_change(
    mail: MailRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = await mail.user("ann")
    await mail.store.ensure_mailboxes(ann)

    async def refuse(topic: str, data: object = None) -> None:
        raise EventError("the event bus is closed")

    monkeypatch.setattr(mail.bus, "publish", refuse)
    stored = await mail.store.append(ann, "INBOX", message())

    assert await mail.store.uids(stored.mailbox_id) == [stored.uid]
