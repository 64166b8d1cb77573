"""SEARCH keys into a typed tree (RFC 3501 §6.4.4)."""

from __future__ import annotations

import datetime

import pytest

from nubo.mail.imap.commands import Search
from nubo.mail.imap.errors import ParseError
from nubo.mail.imap.grammar import parse_command
from nubo.mail.imap.search import (
    All,
    And,
    Date,
    Flag,
    Header,
    Messages,
    ModSeq,
    Not,
    Or,
    SearchKey,
    Size,
    Text,
)
from nubo.mail.imap.sequence import SequenceSet

FEB1 = datetime.date(1994, 2, 1)


def key(text: bytes) -> SearchKey:
    command = parse_command(b"a SEARCH " + text)
    assert isinstance(command, Search)
    return command.key


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (b"ALL", All()),
        (b"ANSWERED", Flag("\\Answered")),
        (b"BCC lee", Header("bcc", "lee")),
        (b"BEFORE 1-Feb-1994", Date("before", FEB1, sent=False)),
        (b'BODY "two words"', Text("two words", body_only=True)),
        (b"CC {3}\r\nann", Header("cc", "ann")),
        (b"DELETED", Flag("\\Deleted")),
        (b"DRAFT", Flag("\\Draft")),
        (b"FLAGGED", Flag("\\Flagged")),
        (b"FROM lee@example.org", Header("from", "lee@example.org")),
        (b"HEADER List-Id nubo", Header("list-id", "nubo")),
        (b'HEADER X-Spam ""', Header("x-spam", "")),
        (b"KEYWORD $Junk", Flag("$Junk")),
        (b"LARGER 10000", Size(10000, larger=True)),
        (b"NEW", And((Flag("\\Recent"), Flag("\\Seen", False)))),
        (b"NOT SEEN", Not(Flag("\\Seen"))),
        (b"OLD", Flag("\\Recent", False)),
        (b'ON "01-Feb-1994"', Date("on", FEB1, sent=False)),
        (b"OR SEEN FLAGGED", Or(Flag("\\Seen"), Flag("\\Flagged"))),
        (b"RECENT", Flag("\\Recent")),
        (b"SEEN", Flag("\\Seen")),
        (b"SENTBEFORE 1-feb-1994", Date("before", FEB1, sent=True)),
        (b"SENTON 1-Feb-1994", Date("on", FEB1, sent=True)),
        (b"SENTSINCE 1-Feb-1994", Date("since", FEB1, sent=True)),
        (b"SINCE 1-Feb-1994", Date("since", FEB1, sent=False)),
        (b"SMALLER 500", Size(500, larger=False)),
        (b"SUBJECT hello", Header("subject", "hello")),
        (b"TEXT nubo", Text("nubo", body_only=False)),
        (b"TO ann", Header("to", "ann")),
        (b"UID 1:*", Messages(SequenceSet.parse(b"1:*"), uid=True)),
        (b"UNANSWERED", Flag("\\Answered", False)),
        (b"UNDELETED", Flag("\\Deleted", False)),
        (b"UNDRAFT", Flag("\\Draft", False)),
        (b"UNFLAGGED", Flag("\\Flagged", False)),
        (b"UNKEYWORD $Junk", Flag("$Junk", False)),
        (b"UNSEEN", Flag("\\Seen", False)),
        (b"2:4,*", Messages(SequenceSet.parse(b"2:4,*"), uid=False)),
        (b"MODSEQ 620162338", ModSeq(620162338)),
        (b'MODSEQ "/flags/\\\\draft" all 620162338', ModSeq(620162338)),
        (b"unseen", Flag("\\Seen", False)),
    ],
)
def test_every_key(wire: bytes, expected: SearchKey) -> None:
    assert key(wire) == expected


def test_a_list_of_keys_is_their_and() -> None:
    assert key(b"UNSEEN SINCE 1-Feb-1994 FROM lee") == And(
        (
            Flag("\\Seen", False),
            Date("since", FEB1, sent=False),
            Header("from", "lee"),
        )
    )


def test_nested_or_not_and_parentheses() -> None:
    # What Thunderbird sends for a quick filter over four fields.
    assert key(b'OR OR OR FROM "x" TO "x" SUBJECT "x" (NOT DELETED 1:5)') == Or(
        Or(Or(Header("from", "x"), Header("to", "x")), Header("subject", "x")),
        And((Not(Flag("\\Deleted")), Messages(SequenceSet.parse(b"1:5"), False))),
    )
    assert key(b"(SEEN)") == Flag("\\Seen")
    assert key(b"NOT (OR SEEN (FLAGGED))") == Not(Or(Flag("\\Seen"), Flag("\\Flagged")))


def test_charsets() -> None:
    command = parse_command(b"a SEARCH CHARSET UTF-8 SUBJECT {5}\r\nJ\xc3\xb6rg")
    assert command == Search("a", "UTF-8", Header("subject", "Jörg"))
    command = parse_command(b"a UID SEARCH charset us-ascii TEXT x")
    assert command == Search("a", "US-ASCII", Text("x", False), uid=True)


def test_an_unknown_charset_is_no_badcharset() -> None:
    with pytest.raises(ParseError) as caught:
        parse_command(b"a SEARCH CHARSET KOI8-R SUBJECT x")
    assert caught.value.status == "NO"
    assert caught.value.code == "BADCHARSET (US-ASCII UTF-8)"
    assert caught.value.tag == "a"


@pytest.mark.parametrize(
    "wire",
    [
        b"",
        b"BOGUS",
        b"FROM",
        b"OR SEEN",
        b"NOT",
        b"()",
        b"(SEEN",
        b"SEEN)",
        b"BEFORE 30-Feb-1994",
        b"BEFORE 1-Feb-94",
        b"BEFORE 1994-02-01",
        b'BEFORE "1-Feb-1994',
        b"LARGER -1",
        b"LARGER 4294967296",
        b"UID",
        b"UID x",
        b"0",
        b"KEYWORD \\Seen",
        b"SUBJECT {2}\r\n\xff\xfe",
        b"CHARSET UTF-8",
        b"MODSEQ x",
        b'MODSEQ "/flags/x" none 5',
        b"SEEN  FLAGGED",
    ],
)
def test_malformed_searches(wire: bytes) -> None:
    with pytest.raises(ParseError):
        parse_command(b"a SEARCH " + wire)
