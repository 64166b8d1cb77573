"""Encoding of responses (RFC 3501 §4, RFC 3501 §7)."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nubo.mail.imap import response
from nubo.mail.imap.errors import ParseError
from nubo.mail.imap.lexer import Limits, Reader

ROUND_TRIP = settings(max_examples=300, deadline=None, database=None)


def read(encoded: bytes, method: str = "astring") -> bytes | None:
    reader = Reader(encoded, Limits())
    value: bytes | None = getattr(reader, method)()
    reader.end()
    return value


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("INBOX", b"INBOX"),
        ("a]b", b"a]b"),
        ("", b'""'),
        ("NIL", b'"NIL"'),
        ("nil", b'"nil"'),
        ("two words", b'"two words"'),
        ('say "hi"', b'"say \\"hi\\""'),
        ("back\\slash", b'"back\\\\slash"'),
        ("50%", b'"50%"'),
        ("a*", b'"a*"'),
        ("(x)", b'"(x)"'),
        ("{3}", b'"{3}"'),
        ("line\r\nbreak", b"{11}\r\nline\r\nbreak"),
        ("tab\there", b"{8}\r\ntab\there"),
        ("Jörg", b"{5}\r\nJ\xc3\xb6rg"),
        (b"\xff\xfe", b"{2}\r\n\xff\xfe"),
        ("nul\x00", b"{6}\r\nnul\xef\xbf\xbd"),
    ],
)
def test_astring_chooses_atom_quoted_or_literal(
    value: str | bytes, encoded: bytes
) -> None:
    assert response.astring(value) == encoded


def test_utf8_accept_quotes_valid_utf8() -> None:
    assert response.string("Jörg", utf8=True) == b'"J\xc3\xb6rg"'
    assert response.string(b"\xff", utf8=True) == b"{1}\r\n\xff"
    assert response.string("a\r\nb", utf8=True) == b"{4}\r\na\r\nb"


def test_nstring_literal_and_atom() -> None:
    assert response.nstring(None) == b"NIL"
    assert response.nstring("x") == b'"x"'
    assert response.literal(b"abc") == b"{3}\r\nabc"
    assert response.atom("\\Seen".removeprefix("\\")) == b"Seen"
    with pytest.raises(ValueError, match="not an IMAP atom"):
        response.atom("two words")


def test_mailbox_names() -> None:
    assert response.mailbox("INBOX") == b"INBOX"
    assert response.mailbox("Entwürfe") == b"Entw&APw-rfe"
    assert response.mailbox("Tom & Jerry") == b'"Tom &- Jerry"'
    assert response.mailbox("Entwürfe", utf8=True) == b'"Entw\xc3\xbcrfe"'


def test_lines() -> None:
    assert (
        response.tagged("a1", "OK", "LOGIN completed") == b"a1 OK LOGIN completed\r\n"
    )
    assert (
        response.tagged("a2", "NO", "no such mailbox", "TRYCREATE")
        == b"a2 NO [TRYCREATE] no such mailbox\r\n"
    )
    assert (
        response.untagged_status("OK", "ready", "CAPABILITY IMAP4rev1 LITERAL+")
        == b"* OK [CAPABILITY IMAP4rev1 LITERAL+] ready\r\n"
    )
    assert response.untagged(b"3", b"EXISTS") == b"* 3 EXISTS\r\n"
    assert response.continuation() == b"+ Ready\r\n"
    assert response.continuation("") == b"+ \r\n"


def test_text_can_never_forge_a_line() -> None:
    line = response.tagged("a", "BAD", "oops\r\n* OK forged", "X]\r\nY")
    assert line.count(b"\r\n") == 1 and line.endswith(b"\r\n")
    assert line == b"a BAD [X Y] oops * OK forged\r\n"


def test_fetch_and_search_lines() -> None:
    items = [
        (b"UID", b"5"),
        (b"FLAGS", response.flags(["\\Seen", "$Junk"])),
        (b"BODY[]<0>", response.literal(b"ab")),
    ]
    assert response.fetch(12, items) == (
        b"* 12 FETCH (UID 5 FLAGS (\\Seen $Junk) BODY[]<0> {2}\r\nab)\r\n"
    )
    assert response.search([]) == b"* SEARCH\r\n"
    assert response.search([2, 5, 9]) == b"* SEARCH 2 5 9\r\n"
    assert (
        response.search([4], modseq=917162500) == b"* SEARCH 4 (MODSEQ 917162500)\r\n"
    )
    assert response.number_set([3, 4, 5, 9, 1]) == b"1,3:5,9"
    assert response.paren([b"a", b"b"]) == b"(a b)"


def test_date_time() -> None:
    pdt = datetime.timezone(datetime.timedelta(hours=-7))
    moment = datetime.datetime(1996, 7, 7, 2, 44, 25, tzinfo=pdt)
    assert response.date_time(moment) == b'"07-Jul-1996 02:44:25 -0700"'
    naive = datetime.datetime(2024, 12, 31, 23, 59, 59)
    assert response.date_time(naive) == b'"31-Dec-2024 23:59:59 +0000"'
    reader = Reader(response.date_time(moment), Limits())
    assert reader.date_time() == moment
    # date-year is 4DIGIT (RFC 3501 §9), also before the year 1000.
    early = datetime.datetime(1, 1, 1, tzinfo=datetime.UTC)
    assert response.date_time(early) == b'"01-Jan-0001 00:00:00 +0000"'


@pytest.mark.parametrize(
    "value", [b'"01-Jan-0001 00:00:00 +1400"', b'"31-Dec-9999 23:59:59 -1400"']
)
def test_a_date_time_without_a_utc_time_is_refused(value: bytes) -> None:
    with pytest.raises(ParseError, match="out of range"):
        Reader(value, Limits()).date_time()


@ROUND_TRIP
@given(st.binary(max_size=60) | st.text(max_size=30))
def test_astring_round_trip(value: bytes | str) -> None:
    octets = (
        value.encode("utf-8", "surrogateescape") if isinstance(value, str) else value
    )
    octets = octets.replace(b"\x00", "\ufffd".encode())
    assert read(response.astring(value)) == octets
    assert read(response.string(value), "string") == octets
    assert read(response.nstring(value), "nstring") == octets


@ROUND_TRIP
@given(
    st.text(
        st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
        max_size=30,
    )
)
def test_mailbox_round_trip(name: str) -> None:
    reader = Reader(response.mailbox(name), Limits())
    expected = "INBOX" if name.upper() == "INBOX" else name
    assert reader.mailbox() == expected
    reader = Reader(response.mailbox(name, utf8=True), Limits(), utf8=True)
    assert reader.mailbox() == expected
