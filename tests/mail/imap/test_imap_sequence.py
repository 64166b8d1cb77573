"""Sequence sets and ``*`` (RFC 3501 §9, ../shared/realworld/IMAP-02_*)."""

from __future__ import annotations

import pytest

from nubo.mail.imap.errors import ParseError
from nubo.mail.imap.sequence import STAR, NumberSet, SequenceSet


def test_parse_keeps_what_was_written() -> None:
    numbers = SequenceSet.parse(b"1:5,7,9:*,*:12,*")
    assert numbers.ranges == ((1, 5), (7, 7), (9, STAR), (STAR, 12), (STAR, STAR))
    assert str(numbers) == "1:5,7,9:*,*:12,*"
    assert numbers.has_star
    assert not SequenceSet.parse(b"4:2").has_star


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"0",
        b"0:5",
        b"01",
        b"1:",
        b":1",
        b"1::2",
        b"1,",
        b",1",
        b"1:2:3",
        b"4294967296",
        b"99999999999",
        b"-1",
        b"1.5",
        b"**",
        b"\xd9\xa1",
    ],
)
def test_invalid_sets(text: bytes) -> None:
    with pytest.raises(ParseError):
        SequenceSet.parse(text)


def test_largest_number_is_32_bit() -> None:
    assert SequenceSet.parse(b"4294967295").ranges == ((4294967295, 4294967295),)


def test_resolve_sorts_merges_and_orders_each_range() -> None:
    resolved = SequenceSet.parse(b"9:*,4:2,3,7,12,20:18,5").resolve(10)
    assert resolved.ranges == ((2, 5), (7, 7), (9, 10), (12, 12), (18, 20))
    assert list(resolved) == [2, 3, 4, 5, 7, 9, 10, 12, 18, 19, 20]
    assert len(resolved) == 11
    assert str(resolved) == "2:5,7,9:10,12,18:20"


def test_imap02_uid_range_above_the_highest_uid() -> None:
    # UIDs 1, 2, 3: "559:*" is "3:559", which holds UID 3 and nothing else.
    uids = [1, 2, 3]
    resolved = SequenceSet.parse(b"559:*").resolve(max(uids))
    assert resolved.ranges == ((3, 559),)
    assert [uid for uid in uids if uid in resolved] == [3]


def test_imap02_star_in_an_empty_mailbox() -> None:
    # FETCH * in an empty mailbox names no message: BAD, not a crash.
    with pytest.raises(ParseError):
        SequenceSet.parse(b"*").resolve_messages(0)
    # UID FETCH 1:* in an empty mailbox: nothing, and OK.
    assert not [uid for uid in [] if uid in SequenceSet.parse(b"1:*").resolve(0)]
    assert SequenceSet.parse(b"*").resolve(0).ranges == ()
    assert SequenceSet.parse(b"1:*").resolve(0).ranges == ((1, 1),)


def test_message_numbers_above_the_count_are_refused() -> None:
    assert SequenceSet.parse(b"2:*").resolve_messages(3).ranges == ((2, 3),)
    assert SequenceSet.parse(b"*:1").resolve_messages(3).ranges == ((1, 3),)
    with pytest.raises(ParseError):
        SequenceSet.parse(b"1:4").resolve_messages(3)
    with pytest.raises(ParseError):
        SequenceSet.parse(b"1").resolve_messages(0)


def test_a_huge_uid_range_is_one_pair() -> None:
    resolved = SequenceSet.parse(b"1:4294967295").resolve(7)
    assert resolved.ranges == ((1, 4294967295),)
    assert len(resolved) == 4294967295
    assert 4294967295 in resolved and 0 not in resolved
    iterator = iter(resolved)
    assert [next(iterator) for _ in range(3)] == [1, 2, 3]
    assert resolved.within(5, 9).ranges == ((5, 9),)


def test_membership() -> None:
    resolved = SequenceSet.parse(b"2:4,10,20:30").resolve(100)
    inside = [n for n in range(0, 40) if n in resolved]
    assert inside == [2, 3, 4, 10, *range(20, 31)]
    assert "3" not in resolved


def test_within_clips_to_existing_numbers() -> None:
    resolved = SequenceSet.parse(b"1:3,8:12,40").resolve(50)
    assert resolved.within(2, 10).ranges == ((2, 3), (8, 10))
    assert not resolved.within(13, 39)


def test_number_set_of_compresses() -> None:
    assert str(NumberSet.of([5, 3, 4, 9, 10, 3, 1])) == "1,3:5,9:10"
    assert str(NumberSet.of([])) == ""
