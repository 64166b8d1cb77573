"""The SMTP adapter's rules without sockets: DATA framing and bounds, reply
codes, the Received field and what submission reads of a header."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from nubo.mail.smtp.data import MAX_LINE, DataCollector
from nubo.mail.smtp.headers import missing_fields, read_header
from nubo.mail.smtp.replies import Refusal, hook, with_status
from nubo.mail.trace import (
    address_literal,
    received,
    return_path,
    with_protocol,
)

# The client stream of ../shared/realworld/MAIL-01 after 354, byte for byte.
MAIL01 = Path(__file__).parent / "mail01_smtp_smuggling_data.bin"


def collect(
    stream: bytes, max_size: int = 10_000, max_header: int = 1_000
) -> tuple[DataCollector, bytes]:
    """Feed ``stream`` split at CRLF as the protocol does; returns the
    collector and what follows the end-of-data line."""
    collector = DataCollector(max_size, max_header)
    pos = 0
    while True:
        end = stream.index(b"\r\n", pos) + 2
        if collector.feed(stream[pos:end]):
            return collector, stream[end:]
        pos = end


def test_only_crlf_dot_crlf_ends_the_data() -> None:
    collector, rest = collect(b"a\r\n..b\r\n.c\r\n\r\n.\r\nQUIT\r\n")

    assert collector.refusal is None
    assert collector.content() == b"a\r\n.b\r\nc\r\n\r\n"
    assert rest == b"QUIT\r\n"


@pytest.mark.parametrize(
    "variant",
    [b"hello\n.\r\n", b"hello\n.\n", b"hello\r.\r\n", b"hello\r\n.\n"],
    ids=["LF.CRLF", "LF.LF", "CR.CRLF", "CRLF.LF"],
)
def test_smuggling_variants_are_refused_as_one_message(variant: bytes) -> None:
    """MAIL-01: the stream goes on to the real end; one refusal for it all."""
    data = MAIL01.read_bytes()
    stream = data.replace(b"hello\n.\r\n", variant)

    collector, rest = collect(stream)

    assert rest == b""
    assert collector.refusal is not None
    assert collector.refusal.code == 554
    assert "smuggling" in collector.refusal.text


def test_a_bare_lf_elsewhere_is_kept() -> None:
    collector, _ = collect(b"Subject: x\r\n\r\nold\nunix\r\n.\r\n")

    assert collector.refusal is None
    assert collector.content() == b"Subject: x\r\n\r\nold\nunix\r\n"


def test_data_over_the_size_is_refused_552() -> None:
    collector, rest = collect(
        b"x" * 50 + b"\r\n" + b"y\r\n" * 100 + b".\r\nNOOP\r\n", 100
    )

    assert rest == b"NOOP\r\n"
    assert collector.refusal is not None
    assert collector.refusal.line.startswith("552 5.3.4")


def test_a_header_block_over_its_limit_is_refused_552() -> None:
    header = b"X-Filler: " + b"z" * 80 + b"\r\n"
    collector, _ = collect(header * 20 + b"\r\nbody\r\n.\r\n", max_header=1_000)

    assert collector.refusal is not None
    assert collector.refusal.line.startswith("552 5.3.4 Message header")


def test_a_long_body_is_not_a_long_header() -> None:
    collector, _ = collect(b"S: x\r\n\r\n" + b"b" * 70 + b"\r\n" * 40 + b".\r\n")

    assert collector.refusal is None


def test_a_line_over_1000_octets_is_refused_500() -> None:
    fits = b"." + b"x" * (MAX_LINE - 2) + b"\r\n"  # stuffed: 1000 once unstuffed
    collector, _ = collect(b"S: x\r\n\r\n" + fits + b".\r\n")
    assert collector.refusal is None

    collector, _ = collect(b"S: x\r\n\r\n" + b"x" * MAX_LINE + b"\r\n.\r\n")
    assert collector.refusal is not None
    assert collector.refusal.line.startswith("500 5.6.0 Line too long")


def test_a_dot_after_an_overlong_piece_does_not_end_the_data() -> None:
    """The reader hands over a line too long to hold in pieces; a piece that
    happens to be ".<CRLF>" is that line's tail, not the end of data."""
    collector = DataCollector(10_000, 1_000)

    collector.overlong(b"x" * 2000)

    assert not collector.feed(b".\r\n")
    assert not collector.feed(b"MAIL FROM:<ceo@example.org>\r\n")
    assert collector.feed(b".\r\n")
    assert collector.refusal is not None
    assert collector.refusal.code == 500


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("250 OK", "250 2.0.0 OK"),
        ("503 Error: need RCPT command", "503 5.5.1 Error: need RCPT command"),
        ("500 Error: bad syntax", "500 5.5.2 Error: bad syntax"),
        ("552 Error: message size exceeds", "552 5.3.4 Error: message size exceeds"),
        ("535 5.7.8 Authentication failed", "535 5.7.8 Authentication failed"),
        ("354 End data with <CR><LF>.<CR><LF>", "354 End data with <CR><LF>.<CR><LF>"),
        ("334 VXNlcm5hbWU6", "334 VXNlcm5hbWU6"),
        ("421 closing", "421 4.0.0 closing"),
        ("250-PIPELINING", "250-2.0.0 PIPELINING"),
    ],
)
def test_replies_get_the_status_their_code_implies(line: str, expected: str) -> None:
    assert with_status(line) == expected


async def test_a_hook_answers_with_its_refusal() -> None:
    @hook
    async def refuse() -> str:
        raise Refusal(550, "5.7.1", "Relaying denied")

    assert await refuse() == "550 5.7.1 Relaying denied"


def test_received_names_helo_address_protocol_and_id() -> None:
    when = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    field = received(
        helo="client.example.net",
        client_ip="192.0.2.7",
        hostname="mx.example.org",
        protocol=with_protocol(esmtp=True, tls=True, auth=False, utf8=False),
        token="abc",
        when=when,
    )

    assert field == (
        b"Received: from client.example.net ([192.0.2.7])\r\n"
        b"\tby mx.example.org with ESMTPS id abc;\r\n"
        b"\tMon, 02 Mar 2026 10:00:00 +0000\r\n"
    )


@pytest.mark.parametrize(
    ("sender", "field"),
    [
        ("ann@example.org", b"Return-Path: <ann@example.org>\r\n"),
        ("<>", b"Return-Path: <>\r\n"),
        ("", b"Return-Path: <>\r\n"),
    ],
)
def test_return_path_holds_the_envelope_sender(sender: str, field: bytes) -> None:
    assert return_path(sender) == field


def test_received_cannot_be_bent_by_the_helo_name() -> None:
    field = received(
        helo="evil (by mx.example.org); x\u00e9",
        client_ip=None,
        hostname="mx.example.org",
        protocol="ESMTPSA",
        token="t",
    )

    first = field.split(b"\r\n")[0]
    assert first == b"Received: from evil??by?mx.example.org???x?"


@pytest.mark.parametrize(
    ("esmtp", "tls", "auth", "utf8", "name"),
    [
        (False, False, False, False, "SMTP"),
        (True, False, False, False, "ESMTP"),
        (True, True, False, False, "ESMTPS"),
        (True, False, True, False, "ESMTPA"),
        (True, True, True, False, "ESMTPSA"),
        (True, True, True, True, "UTF8SMTPSA"),
    ],
)
def test_with_protocol_per_rfc_3848(
    esmtp: bool, tls: bool, auth: bool, utf8: bool, name: str
) -> None:
    assert with_protocol(esmtp=esmtp, tls=tls, auth=auth, utf8=utf8) == name


def test_address_literals() -> None:
    assert address_literal("192.0.2.7") == "[192.0.2.7]"
    assert address_literal("2001:db8::1") == "[IPv6:2001:db8::1]"
    assert address_literal("::ffff:192.0.2.7") == "[192.0.2.7]"
    assert address_literal("garbage") == "[unknown]"


def test_read_header_finds_every_author() -> None:
    raw = (
        b'From: Ann <ann@example.org>, "B, C" <bc@example.org>\r\n'
        b"Sender: =?utf-8?q?Se=C3=B1or?= <sec@example.org>\r\n"
        b"To: x@example.net\r\n\r\n"
        b"From: body@example.net\r\n"
    )

    facts = read_header(raw)

    assert facts.authors == ("ann@example.org", "bc@example.org", "sec@example.org")
    assert facts.has_from
    assert not facts.has_date
    assert not facts.has_message_id


def test_read_header_of_groups_and_garbage() -> None:
    facts = read_header(b"From: undisclosed:;\r\nFrom: <@>\r\n\r\n")

    assert facts.has_from
    assert facts.authors == ("",)  # an address no one owns


def test_missing_fields_adds_date_and_message_id_once() -> None:
    facts = read_header(b"From: a@example.org\r\n\r\nhi\r\n")
    added = missing_fields(facts, "mx.example.org")

    assert added.startswith(b"Date: ")
    assert b"\r\nMessage-ID: <" in added and added.endswith(b"@mx.example.org>\r\n")
    assert missing_fields(read_header(added + b"\r\n"), "mx.example.org") == b""


def test_refusals_are_ascii() -> None:
    """Replies are ASCII (RFC 5321 §4.2); swaks and others choke otherwise."""
    from nubo.mail.smtp import data

    refusals = [
        data.smuggling(),
        data.line_too_long(),
        data.too_big(1),
        data.header_too_big(1),
    ]
    for refusal in refusals:
        assert refusal.line.isascii(), refusal.line
