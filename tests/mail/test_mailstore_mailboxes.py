"""Mailboxes: defaults, names, create, rename, delete, subscriptions."""

from __future__ import annotations

import asyncio

import pytest

from nubo.mail.mailstore import (
    InvalidMailboxName,
    InvalidSpecialUse,
    MailboxExists,
    MailboxHasChildren,
    MailboxProtected,
    NoSuchMailbox,
    Stored,
    UnknownUser,
    mailbox_name,
)
from nubo.mail.mailstore.names import MAX_DEPTH, MAX_LEVEL_LENGTH, special_use
from tests.mail.mailstore_rig import MailRig, check_invariants, drain, message

DEFAULTS = ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"]


# -- names, without a store ---------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("INBOX", "INBOX"),
        ("inbox", "INBOX"),
        ("InBoX", "INBOX"),
        ("inbox/Work", "INBOX/Work"),
        ("Inboxes", "Inboxes"),
        ("Work/inbox", "Work/inbox"),
        ("Caf\u0065\u0301", "Caf\u00e9"),  # NFC
        ("Привет/世界", "Привет/世界"),
        ("a b/c&d", "a b/c&d"),
    ],
)
def test_names_are_normalized(given: str, stored: str) -> None:
    assert mailbox_name(given) == stored


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "/",
        "/Work",
        "Work/",
        "Work//Old",
        "a%b",
        "a*",
        "tab\there",
        "nul\x00",
        "del\x7f",
        "c1\x85",
        "..",
        "a/./b",
        "x" * (MAX_LEVEL_LENGTH + 1),
        "/".join(["a"] * (MAX_DEPTH + 1)),
        "/".join(["x" * 200] * 6),  # over MAX_LENGTH
        "surrogate\udcff",
    ],
)
def test_bad_names_are_refused(bad: str) -> None:
    with pytest.raises(InvalidMailboxName):
        mailbox_name(bad)


def test_special_uses_are_normalized() -> None:
    assert special_use("\\Sent") == "Sent"
    assert special_use("junk") == "Junk"
    assert special_use(None) is None
    for bad in ("\\All", "\\Flagged", "Inbox", ""):
        with pytest.raises(InvalidSpecialUse):
            special_use(bad)


# -- the default set ----------------------------------------------------------


async def test_ensure_mailboxes_is_idempotent(mail: MailRig) -> None:
    ann = await mail.user("ann")
    with mail.bus.subscribe(f"mailboxes:{ann}") as sub:
        await mail.store.ensure_mailboxes(ann)
        first = await mail.store.list_mailboxes(ann)
        await mail.store.ensure_mailboxes(ann)
        events = drain(sub)

    assert [box.name for box in first] == DEFAULTS
    assert await mail.store.list_mailboxes(ann) == first
    assert {box.name: box.special_use for box in first} == {
        "INBOX": None,
        "Archive": "Archive",
        "Drafts": "Drafts",
        "Junk": "Junk",
        "Sent": "Sent",
        "Trash": "Trash",
    }
    assert all(box.subscribed for box in first)
    assert len({box.uidvalidity for box in first}) == len(first)
    assert all(0 < box.uidvalidity < 2**32 for box in first)
    assert len(events) == 1  # the second call changed nothing


async def test_concurrent_ensure_mailboxes_make_one_set(mail: MailRig) -> None:
    ann = await mail.user("ann")

    await asyncio.gather(*(mail.store.ensure_mailboxes(ann) for _ in range(8)))

    assert [box.name for box in await mail.store.list_mailboxes(ann)] == DEFAULTS


async def test_ensure_respects_renamed_and_adopts_plain_names(mail: MailRig) -> None:
    ann = await mail.user("ann")
    await mail.store.ensure_mailboxes(ann)
    await mail.store.rename_mailbox(ann, "Sent", "Sent Items")
    await mail.store.delete_mailbox(ann, "Trash")
    await mail.store.create_mailbox(ann, "Trash")  # a plain one

    await mail.store.ensure_mailboxes(ann)

    uses = {box.name: box.special_use for box in await mail.store.list_mailboxes(ann)}
    assert uses["Sent Items"] == "Sent"
    assert "Sent" not in uses
    assert uses["Trash"] == "Trash"


async def test_ensure_for_an_unknown_user_is_refused(mail: MailRig) -> None:
    with pytest.raises(UnknownUser):
        await mail.store.ensure_mailboxes(424242)


# -- create ---------------------------------------------------------------------


async def test_create_makes_missing_parents(mail: MailRig) -> None:
    ann = await mail.user("ann")
    await mail.store.ensure_mailboxes(ann)
    with mail.bus.subscribe(f"mailboxes:{ann}") as sub:
        box = await mail.store.create_mailbox(ann, "Work/2026/Q1")
        assert len(drain(sub)) == 1

    assert box.name == "Work/2026/Q1"
    assert box.uidnext == 1
    names = [b.name for b in await mail.store.list_mailboxes(ann)]
    assert {"Work", "Work/2026", "Work/2026/Q1"} <= set(names)
    assert await mail.store.get_mailbox(ann, "Work/2026") is not None

    with pytest.raises(MailboxExists):
        await mail.store.create_mailbox(ann, "Work/2026")
    with pytest.raises(MailboxExists):
        await mail.store.create_mailbox(ann, "inbox")
    with pytest.raises(InvalidMailboxName):
        await mail.store.create_mailbox(ann, "Work//x")


async def test_create_with_special_use(mail: MailRig) -> None:
    ann = await mail.user("ann")

    box = await mail.store.create_mailbox(ann, "Old mail", special_use="\\Archive")

    assert box.special_use == "Archive"
    with pytest.raises(InvalidSpecialUse):
        await mail.store.create_mailbox(ann, "Other", special_use="Archive")
    with pytest.raises(InvalidSpecialUse):
        await mail.store.create_mailbox(ann, "Stars", special_use="\\Flagged")


async def test_mailboxes_are_per_user(mail: MailRig) -> None:
    ann, bob = await mail.user("ann"), await mail.user("bob")
    await mail.store.create_mailbox(ann, "Private")

    with pytest.raises(NoSuchMailbox):
        await mail.store.get_mailbox(bob, "Private")
    await mail.store.create_mailbox(bob, "Private")  # the same name is free


async def test_a_recreated_mailbox_has_a_new_uidvalidity(mail: MailRig) -> None:
    ann = await mail.user("ann")
    seen = set()
    for _ in range(5):
        box = await mail.store.create_mailbox(ann, "Again")
        seen.add(box.uidvalidity)
        await mail.store.delete_mailbox(ann, "Again")
    assert len(seen) == 5


# -- delete ---------------------------------------------------------------------


async def test_delete_removes_messages_and_frees_quota(mail: MailRig) -> None:
    ann = await mail.user("ann")
    await mail.store.ensure_mailboxes(ann)
    box = await mail.store.create_mailbox(ann, "Old")
    raw = message(1, 5000)
    await mail.store.append(ann, "Old", raw)
    await mail.store.append(ann, "Old", message(2))
    await mail.store.append(ann, "INBOX", raw)  # the same bytes elsewhere

    with mail.bus.subscribe(f"mailbox:{box.id}", f"mailboxes:{ann}") as sub:
        await mail.store.delete_mailbox(ann, "Old")
        topics = [event.topic for event in drain(sub)]

    assert topics == [f"mailbox:{box.id}", f"mailboxes:{ann}"]
    assert (await mail.store.usage(ann))[0] == len(raw)
    with pytest.raises(NoSuchMailbox):
        await mail.store.get_mailbox(ann, "Old")
    with pytest.raises(NoSuchMailbox):
        await mail.store.delete_mailbox(ann, "Old")
    await check_invariants(mail)


async def test_inbox_and_parents_cannot_be_deleted(mail: MailRig) -> None:
    ann = await mail.user("ann")
    await mail.store.ensure_mailboxes(ann)
    await mail.store.create_mailbox(ann, "Work/Done")

    with pytest.raises(MailboxProtected):
        await mail.store.delete_mailbox(ann, "inbox")
    with pytest.raises(MailboxHasChildren):
        await mail.store.delete_mailbox(ann, "Work")

    await mail.store.delete_mailbox(ann, "Work/Done")
    await mail.store.delete_mailbox(ann, "Work")


# -- rename ---------------------------------------------------------------------


async def test_rename_takes_the_children_and_keeps_uidvalidity(mail: MailRig) -> None:
    ann = await mail.user("ann")
    await mail.store.ensure_mailboxes(ann)
    work = await mail.store.create_mailbox(ann, "Work/2026")
    parent = await mail.store.get_mailbox(ann, "Work")
    await mail.store.append(ann, "Work/2026", message())
    await mail.store.create_mailbox(ann, "Workshop")  # a prefix, not a child

    renamed = await mail.store.rename_mailbox(ann, "Work", "Archive/Jobs/Work")

    assert renamed.id == parent.id
    assert renamed.uidvalidity == parent.uidvalidity
    assert renamed.highestmodseq > parent.highestmodseq
    child = await mail.store.get_mailbox(ann, "Archive/Jobs/Work/2026")
    assert child.id == work.id
    assert child.uidvalidity == work.uidvalidity
    assert len(await mail.store.uids(child.id)) == 1
    names = {b.name for b in await mail.store.list_mailboxes(ann)}
    assert "Archive/Jobs" in names  # the missing parent was made
    assert "Workshop" in names
    assert not {"Work", "Work/2026"} & names


async def test_rename_conflicts(mail: MailRig) -> None:
    ann = await mail.user("ann")
    await mail.store.ensure_mailboxes(ann)
    await mail.store.create_mailbox(ann, "A/x")
    await mail.store.create_mailbox(ann, "B/x")

    with pytest.raises(MailboxExists):
        await mail.store.rename_mailbox(ann, "A", "Sent")
    with pytest.raises(MailboxExists):
        await mail.store.rename_mailbox(ann, "A", "INBOX")
    with pytest.raises(MailboxExists):
        await mail.store.rename_mailbox(ann, "A", "B")
    with pytest.raises(InvalidMailboxName):
        await mail.store.rename_mailbox(ann, "A", "A/x/y")
    with pytest.raises(NoSuchMailbox):
        await mail.store.rename_mailbox(ann, "Nope", "Nope2")


async def test_rename_inbox_moves_the_messages(mail: MailRig) -> None:
    """RFC 3501 §6.3.5: INBOX stays, empty; its inferiors stay where they are."""
    ann = await mail.user("ann")
    await mail.store.ensure_mailboxes(ann)
    for n in range(3):
        await mail.store.deliver([ann], message(n))
    inbox = await mail.store.get_mailbox(ann, "INBOX")
    await mail.store.store_flags(inbox.id, [2], "add", ["\\Flagged"])
    await mail.store.create_mailbox(ann, "INBOX/Child")
    before = await mail.store.messages(inbox.id)

    with mail.bus.subscribe(f"mailbox:{inbox.id}") as sub:
        moved = await mail.store.rename_mailbox(ann, "Inbox", "Old inbox")
        assert [e.topic for e in drain(sub)] == [f"mailbox:{inbox.id}"]

    after_inbox = await mail.store.get_mailbox(ann, "INBOX")
    assert after_inbox.id == inbox.id
    assert after_inbox.uidvalidity == inbox.uidvalidity
    assert after_inbox.highestmodseq > inbox.highestmodseq
    assert await mail.store.uids(inbox.id) == []
    assert await mail.store.vanished(inbox.id, inbox.highestmodseq) == [1, 2, 3]
    assert moved.name == "Old inbox"
    assert moved.uidvalidity != inbox.uidvalidity
    assert moved.uidnext == inbox.uidnext
    assert [
        (r.uid, r.flags, r.blob_id) for r in await mail.store.messages(moved.id)
    ] == [(r.uid, r.flags, r.blob_id) for r in before]
    assert (await mail.store.get_mailbox(ann, "INBOX/Child")).name == "INBOX/Child"

    # New mail still lands in INBOX, with UIDs never given there before.
    stored = (await mail.store.deliver([ann], message(9)))[ann]
    assert isinstance(stored, Stored)
    assert stored.mailbox_id == inbox.id
    assert stored.uid == 4
    await check_invariants(mail)


# -- subscriptions --------------------------------------------------------------


async def test_subscriptions(mail: MailRig) -> None:
    ann = await mail.user("ann")
    await mail.store.ensure_mailboxes(ann)

    await mail.store.set_subscribed(ann, "Junk", False)

    subscribed = {b.name: b.subscribed for b in await mail.store.list_mailboxes(ann)}
    assert subscribed["Junk"] is False
    assert subscribed["INBOX"] is True
    with pytest.raises(NoSuchMailbox):  # only INBOX is case-insensitive
        await mail.store.set_subscribed(ann, "junk", True)
    await mail.store.set_subscribed(ann, "Junk", True)
    assert (await mail.store.get_mailbox(ann, "Junk")).subscribed is True
    with pytest.raises(NoSuchMailbox):
        await mail.store.set_subscribed(ann, "Nope", True)


async def test_purge_user_removes_everything(mail: MailRig) -> None:
    ann, bob = await mail.user("ann"), await mail.user("bob")
    raw = message(1, 3000)
    await mail.store.deliver([ann, bob], raw)
    await mail.store.append_special(ann, "Sent", message(2))

    assert await mail.store.purge_user(ann) == 2

    assert await mail.store.list_mailboxes(ann) == []
    assert (await mail.store.usage(ann))[0] == 0
    assert (await mail.store.usage(bob))[0] == len(raw)
    await check_invariants(mail)


async def test_create_for_an_unknown_user_is_refused(mail: MailRig) -> None:
    with pytest.raises(UnknownUser):
        await mail.store.create_mailbox(424242, "Work")


async def test_concurrent_hierarchy_changes_keep_every_parent(mail: MailRig) -> None:
    """Racing CREATE, RENAME and DELETE of one user's names: one CREATE of a
    name wins, and no mailbox is left without its superior names."""
    ann = await mail.user("ann")
    await mail.store.ensure_mailboxes(ann)
    await mail.store.create_mailbox(ann, "A")

    creates = await asyncio.gather(
        *(mail.store.create_mailbox(ann, "Same") for _ in range(6)),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in creates) == 1
    assert all(
        isinstance(r, MailboxExists) for r in creates if isinstance(r, BaseException)
    )

    results = await asyncio.gather(
        mail.store.rename_mailbox(ann, "A", "B"),
        mail.store.create_mailbox(ann, "A/x/y"),
        mail.store.create_mailbox(ann, "B/z"),
        mail.store.delete_mailbox(ann, "Same"),
        return_exceptions=True,
    )
    for result in results:
        assert not isinstance(result, BaseException) or isinstance(
            result, (MailboxExists, NoSuchMailbox)
        ), result

    names = {box.name for box in await mail.store.list_mailboxes(ann)}
    for name in names:
        levels = name.split("/")
        for n in range(1, len(levels)):
            assert "/".join(levels[:n]) in names, name
