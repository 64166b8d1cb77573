"""FETCH items and sections (RFC 3501 §6.4.5)."""

from __future__ import annotations

import pytest

from nubo.mail.imap.commands import Fetch
from nubo.mail.imap.errors import ParseError
from nubo.mail.imap.fetch import FetchAttr, FetchBody, FetchItem, Section
from nubo.mail.imap.grammar import parse_command


def items(text: bytes) -> tuple[FetchItem, ...]:
    command = parse_command(b"a FETCH 1 " + text)
    assert isinstance(command, Fetch)
    return command.items


@pytest.mark.parametrize(
    ("macro", "names"),
    [
        (b"ALL", ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE")),
        (b"fast", ("FLAGS", "INTERNALDATE", "RFC822.SIZE")),
        (b"FULL", ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY")),
    ],
)
def test_macros_expand(macro: bytes, names: tuple[str, ...]) -> None:
    assert items(macro) == tuple(FetchAttr(name) for name in names)


@pytest.mark.parametrize(
    "name",
    [
        "ENVELOPE",
        "FLAGS",
        "INTERNALDATE",
        "RFC822",
        "RFC822.HEADER",
        "RFC822.SIZE",
        "RFC822.TEXT",
        "BODY",
        "BODYSTRUCTURE",
        "UID",
        "MODSEQ",
    ],
)
def test_every_attribute(name: str) -> None:
    assert items(name.encode()) == (FetchAttr(name),)
    assert items(name.lower().encode()) == (FetchAttr(name),)


@pytest.mark.parametrize(
    ("wire", "expected", "response_name"),
    [
        (b"BODY[]", FetchBody(), b"BODY[]"),
        (b"BODY.PEEK[]", FetchBody(peek=True), b"BODY[]"),
        (b"BODY[HEADER]", FetchBody(Section(text="HEADER")), b"BODY[HEADER]"),
        (b"body.peek[text]", FetchBody(Section(text="TEXT"), peek=True), b"BODY[TEXT]"),
        (b"BODY[1]", FetchBody(Section((1,))), b"BODY[1]"),
        (b"BODY[1.2.3]", FetchBody(Section((1, 2, 3))), b"BODY[1.2.3]"),
        (b"BODY[2.MIME]", FetchBody(Section((2,), "MIME")), b"BODY[2.MIME]"),
        (b"BODY[3.HEADER]", FetchBody(Section((3,), "HEADER")), b"BODY[3.HEADER]"),
        (b"BODY[3.TEXT]", FetchBody(Section((3,), "TEXT")), b"BODY[3.TEXT]"),
        (
            b"BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date Message-ID)]",
            FetchBody(
                Section(
                    text="HEADER.FIELDS",
                    fields=("From", "To", "Cc", "Subject", "Date", "Message-ID"),
                ),
                peek=True,
            ),
            b"BODY[HEADER.FIELDS (From To Cc Subject Date Message-ID)]",
        ),
        (
            b'BODY[1.HEADER.FIELDS.NOT ("Received" X-Spam)]',
            FetchBody(Section((1,), "HEADER.FIELDS.NOT", ("Received", "X-Spam"))),
            b"BODY[1.HEADER.FIELDS.NOT (Received X-Spam)]",
        ),
        (
            b"BODY[]<0.2048>",
            FetchBody(partial=(0, 2048)),
            b"BODY[]<0>",
        ),
        (
            b"BODY.PEEK[1.2]<100.50>",
            FetchBody(Section((1, 2)), (100, 50), peek=True),
            b"BODY[1.2]<100>",
        ),
    ],
)
def test_body_sections(wire: bytes, expected: FetchBody, response_name: bytes) -> None:
    assert items(wire) == (expected,)
    assert expected.response_name() == response_name


def test_a_list_mixes_attributes_and_sections() -> None:
    # K-9 Mail's header fetch.
    assert items(
        b"(UID INTERNALDATE RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS"
        b" (date subject from content-type to cc reply-to message-id references"
        b" in-reply-to X-K9mail-Identity Chat-Version)])"
    )[-1] == FetchBody(
        Section(
            text="HEADER.FIELDS",
            fields=(
                "date",
                "subject",
                "from",
                "content-type",
                "to",
                "cc",
                "reply-to",
                "message-id",
                "references",
                "in-reply-to",
                "X-K9mail-Identity",
                "Chat-Version",
            ),
        ),
        peek=True,
    )


@pytest.mark.parametrize(
    "wire",
    [
        b"BODY[MIME]",  # MIME needs a part
        b"BODY[0]",
        b"BODY[1.]",
        b"BODY[.1]",
        b"BODY[01]",
        b"BODY[1.2.HEADERS]",
        b"BODY[HEADER.FIELDS]",
        b"BODY[HEADER.FIELDS ()]",
        b"BODY[HEADER.FIELDS (Subject:)]",
        b"BODY[HEADER.FIELDS (Subject]",
        b"BODY[TEXT",
        b"BODY[]<0>",
        b"BODY[]<0.0>",
        b"BODY[]<1.2.3>",
        b"BODY[]<99999999999.1>",
        b"BINARY[]",
        b"RFC822.PEEK",
        b"UID[]",
        b"(UID FLAGS",
        b"(UID  FLAGS)",
        b"ALL FAST",
        b"(ALL)",
    ],
)
def test_malformed_items(wire: bytes) -> None:
    with pytest.raises(ParseError):
        parse_command(b"a FETCH 1 " + wire)
