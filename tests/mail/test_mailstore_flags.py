"""Flags: the bit map and keyword rules, and STORE with UNCHANGEDSINCE."""

from __future__ import annotations

import pytest

from nubo.mail import flags as fl
from nubo.mail.mailstore import InvalidFlag, NoSuchMailbox, Stored
from tests.mail.mailstore_rig import MailRig, check_invariants, drain, message

# -- flags, without a store -----------------------------------------------------


def test_the_bit_map_is_the_stored_format() -> None:
    # Rows on disk hold these numbers: they must never change.
    assert fl.SYSTEM_FLAGS == {
        "\\Seen": 1,
        "\\Answered": 2,
        "\\Flagged": 4,
        "\\Deleted": 8,
        "\\Draft": 16,
    }


def test_parse_flags() -> None:
    bits, keywords = fl.parse_flags(
        ["\\seen", "\\DELETED", "$Label1", "\\Recent", "$label1", "NonJunk"]
    )
    assert bits == fl.SEEN | fl.DELETED
    assert keywords == ("$Label1", "NonJunk")
    assert fl.parse_flags([]) == (0, ())


@pytest.mark.parametrize(
    "bad",
    [
        "\\Unknown",
        "",
        "with space",
        "paren(",
        "brace{",
        'quote"',
        "back\\slash",
        "bracket]",
        "percent%",
        "star*",
        "ctl\x01",
        "del\x7f",
        "non-ascii-é",
        "x" * (fl.MAX_KEYWORD_LENGTH + 1),
    ],
)
def test_bad_flags_are_refused(bad: str) -> None:
    with pytest.raises(fl.FlagSyntaxError):
        fl.parse_flags([bad])


def test_too_many_keywords_are_refused() -> None:
    many = [f"k{n}" for n in range(fl.MAX_KEYWORDS + 1)]
    with pytest.raises(fl.FlagSyntaxError):
        fl.parse_flags(many)
    column = fl.keywords_column(many[:-1])
    with pytest.raises(fl.FlagSyntaxError):
        fl.add_keywords(column, ["one-more"])


def test_keyword_column() -> None:
    assert fl.keywords_column([]) == " "
    column = fl.keywords_column(["$Junk", "Work"])
    assert column == " $Junk Work "
    assert fl.add_keywords(column, ["work", "New"]) == " $Junk Work New "
    assert fl.remove_keywords(column, ["$JUNK"]) == " Work "
    assert fl.remove_keywords(column, ["Work", "$Junk"]) == " "
    assert fl.flag_names(fl.SEEN | fl.DRAFT, column) == {
        "\\Seen",
        "\\Draft",
        "$Junk",
        "Work",
    }


# -- STORE ------------------------------------------------------------------------


async def three_messages(mail: MailRig) -> int:
    ann = await mail.user("ann")
    box = 0
    for n in range(3):
        stored = (await mail.store.deliver([ann], message(n)))[ann]
        assert isinstance(stored, Stored)
        box = stored.mailbox_id
    return box


async def test_add_remove_replace(mail: MailRig) -> None:
    box = await three_messages(mail)
    start = (await mail.store.status(box)).highestmodseq

    changed, failed = await mail.store.store_flags(
        box, [1, 2], "add", ["\\Seen", "$Work"]
    )
    assert failed == []
    assert [(r.uid, r.flags) for r in changed] == [
        (1, {"\\Seen", "$Work"}),
        (2, {"\\Seen", "$Work"}),
    ]
    first = changed[0].modseq
    assert first == start + 1
    assert {r.modseq for r in changed} == {first}

    changed, _ = await mail.store.store_flags(box, [1, 2, 3], "remove", ["$work"])
    assert [(r.uid, r.flags) for r in changed] == [(1, {"\\Seen"}), (2, {"\\Seen"})]
    assert changed[0].modseq == first + 1

    changed, _ = await mail.store.store_flags(
        box, [1, 2, 3], "replace", ["\\Flagged", "Later"]
    )
    assert [r.uid for r in changed] == [1, 2, 3]
    rows = await mail.store.messages(box)
    assert [r.flags for r in rows] == [{"\\Flagged", "Later"}] * 3
    assert [r.modseq for r in rows] == [first + 2] * 3
    assert (await mail.store.status(box)).highestmodseq == first + 2


async def test_a_store_that_changes_nothing_keeps_modseq(mail: MailRig) -> None:
    box = await three_messages(mail)
    await mail.store.store_flags(box, [1], "add", ["\\Seen", "Work"])
    before = await mail.store.status(box)

    with mail.bus.subscribe(f"mailbox:{box}") as sub:
        assert await mail.store.store_flags(box, [1], "add", ["\\seen", "WORK"]) == (
            [],
            [],
        )
        assert await mail.store.store_flags(box, [2], "remove", ["\\Seen"]) == ([], [])
        assert await mail.store.store_flags(
            box, [1], "replace", ["work", "\\Seen"]
        ) == ([], [])
        assert await mail.store.store_flags(box, [99], "add", ["\\Seen"]) == ([], [])
        assert await mail.store.store_flags(box, [], "add", ["\\Seen"]) == ([], [])
        assert drain(sub) == []

    assert (await mail.store.status(box)).highestmodseq == before.highestmodseq


async def test_unchanged_since(mail: MailRig) -> None:
    """RFC 7162 §3.1.3: messages changed after the given MODSEQ are refused
    and the others are changed."""
    box = await three_messages(mail)
    rows = await mail.store.messages(box)
    checkpoint = max(r.modseq for r in rows)
    changed, _ = await mail.store.store_flags(box, [2], "add", ["\\Answered"])

    changed, failed = await mail.store.store_flags(
        box, [1, 2, 3], "add", ["\\Seen"], unchanged_since=checkpoint
    )

    assert failed == [2]
    assert [r.uid for r in changed] == [1, 3]
    flags = {r.uid: r.flags for r in await mail.store.messages(box)}
    assert flags == {1: {"\\Seen"}, 2: {"\\Answered"}, 3: {"\\Seen"}}

    # UNCHANGEDSINCE 0 fails for every message.
    changed, failed = await mail.store.store_flags(
        box, [1, 2, 3], "add", ["\\Flagged"], unchanged_since=0
    )
    assert (changed, failed) == ([], [1, 2, 3])


async def test_invalid_store_is_refused(mail: MailRig) -> None:
    box = await three_messages(mail)
    with pytest.raises(InvalidFlag):
        await mail.store.store_flags(box, [1], "add", ["\\Nope"])
    with pytest.raises(NoSuchMailbox):
        await mail.store.store_flags(box + 1000, [1], "add", ["\\Seen"])
    many = [f"k{n}" for n in range(fl.MAX_KEYWORDS)]
    await mail.store.store_flags(box, [1], "add", many)
    with pytest.raises(InvalidFlag):
        await mail.store.store_flags(box, [1], "add", ["extra"])


async def test_status_counts(mail: MailRig) -> None:
    box = await three_messages(mail)
    await mail.store.store_flags(box, [1], "add", ["\\Seen"])
    await mail.store.store_flags(box, [2], "add", ["\\Deleted", "\\Seen"])

    status = await mail.store.status(box)
    rows = await mail.store.messages(box)

    assert status.messages == 3
    assert status.unseen == 1
    assert status.deleted == 1
    assert status.uidnext == 4
    assert status.size == sum(r.size for r in rows)
    assert status.highestmodseq == max(r.modseq for r in rows)
    await check_invariants(mail)


async def test_status_of_an_empty_mailbox(mail: MailRig) -> None:
    ann = await mail.user("ann")
    box = await mail.store.create_mailbox(ann, "Empty")

    status = await mail.store.status(box.id)

    assert (status.messages, status.unseen, status.size, status.deleted) == (
        0,
        0,
        0,
        0,
    )
    assert status.uidnext == 1
    assert status.uidvalidity == box.uidvalidity
    with pytest.raises(NoSuchMailbox):
        await mail.store.status(box.id + 1000)


def test_apply_store() -> None:
    column = fl.keywords_column(["Work"])
    assert fl.apply_store("add", fl.SEEN, ("work",), fl.SEEN, column) is None
    assert fl.apply_store("add", fl.SEEN, ("New",), 0, column) == (
        fl.SEEN,
        " Work New ",
    )
    assert fl.apply_store("remove", fl.SEEN, (), fl.SEEN | fl.DRAFT, column) == (
        fl.DRAFT,
        column,
    )
    assert fl.apply_store("replace", 0, ("WORK",), 0, column) is None
    assert fl.apply_store("replace", 0, (), 0, column) == (0, " ")
    with pytest.raises(ValueError, match="unknown STORE mode"):
        fl.apply_store("toggle", 0, (), 0, column)
