"""The incremental parser: framing, literals, APPEND streaming, modes, limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from nubo.mail.imap.commands import Append, Idle, Login, Logout, Noop, Select
from nubo.mail.imap.lexer import Limits
from nubo.mail.imap.parser import (
    AppendData,
    AppendStart,
    Done,
    Event,
    NeedContinuation,
    Parser,
    Reject,
    SaslResponse,
)

# A copy of the shared real-world input, so that any clone runs the test.
REALWORLD = Path(__file__).with_name("realworld")


def drain(parser: Parser, data: bytes = b"") -> list[Event]:
    parser.feed(data)
    events = []
    while (event := parser.next_event()) is not None:
        events.append(event)
    return events


def test_imap01_non_synchronizing_literals_in_one_write() -> None:
    wire = (REALWORLD / "IMAP-01_login_nonsync_literals.bin").read_bytes()
    assert wire == b"a1 LOGIN {15+}\r\nlee@example.org {8+}\r\nS3cr3t!x\r\n"
    # No continuation request and nothing else: the literal octets are data.
    assert drain(Parser(), wire) == [Login("a1", "lee@example.org", "S3cr3t!x")]


def test_imap01_synchronizing_literals_wait_for_the_continuation() -> None:
    parser = Parser()
    assert drain(parser, b"a2 LOGIN {15}\r\n") == [NeedContinuation("a2", 15)]
    assert drain(parser, b"lee@example.org {8}\r\n") == [NeedContinuation("a2", 8)]
    assert drain(parser, b"S3cr3t!x\r\n") == [
        Login("a2", "lee@example.org", "S3cr3t!x")
    ]


def test_imap01_byte_by_byte() -> None:
    wire = (REALWORLD / "IMAP-01_login_nonsync_literals.bin").read_bytes()
    parser = Parser()
    events = [event for octet in wire for event in drain(parser, bytes([octet]))]
    assert events == [Login("a1", "lee@example.org", "S3cr3t!x")]


def test_literal_octets_are_never_run_as_commands() -> None:
    # A refused command's literal holds what looks like a command.
    events = drain(Parser(), b"a1 BOGUS {11+}\r\na2 LOGOUT\r\n\r\na3 NOOP\r\n")
    assert events == [Reject("a1", "unknown command"), Noop("a3")]


def test_pipelined_commands_bare_lf_and_stray_lines() -> None:
    events = drain(Parser(), b"a NOOP\r\n\r\nb SELECT inbox\nc LOGOUT\r\n")
    assert events == [Noop("a"), Select("b", "INBOX"), Logout("c")]


def test_a_malformed_command_is_refused_and_the_session_goes_on() -> None:
    events = drain(Parser(), b"a FETCH 0 FLAGS\r\n* NOOP\r\nb NOOP\r\n")
    assert events == [
        Reject("a", "invalid sequence set"),
        Reject(None, "missing or malformed tag"),
        Noop("b"),
    ]


def test_partial_lines_wait_for_more() -> None:
    parser = Parser()
    assert drain(parser, b"a NO") == []
    assert drain(parser, b"OP\r") == []
    assert drain(parser, b"\n") == [Noop("a")]


# --- limits -----------------------------------------------------------------


def test_a_too_large_synchronizing_literal_is_refused_before_it_comes() -> None:
    parser = Parser(Limits(max_literal=100))
    assert drain(parser, b"a LOGIN {101}\r\n") == [
        Reject("a", "literal too large", "TOOBIG")
    ]
    # The client sends no literal after a refusal: the next line is a command.
    assert drain(parser, b"b NOOP\r\n") == [Noop("b")]


def test_a_too_large_non_synchronizing_literal_is_read_and_dropped() -> None:
    parser = Parser(Limits(max_literal=100))
    junk = b"x LOGOUT\r\n" * 1000
    events = drain(parser, b"a LOGIN {%d+}\r\n" % len(junk))
    assert events == [Reject("a", "literal too large", "TOOBIG")]
    for start in range(0, len(junk), 777):
        assert drain(parser, junk[start : start + 777]) == []
        assert parser.buffered <= 777
    assert drain(parser, b" {3+}\r\nabc\r\nb NOOP\r\n") == [Noop("b")]


def test_an_unreadable_literal_size_closes_the_connection() -> None:
    events = drain(Parser(), b"a LOGIN {%s+}\r\n" % (b"9" * 30))
    assert events == [Reject("a", "literal too large", "TOOBIG", fatal=True)]


def test_a_too_long_line_is_refused_and_skipped_in_bounded_memory() -> None:
    parser = Parser(Limits(max_line=1000))
    assert drain(parser, b"a SEARCH TEXT " + b"x" * 600) == []
    assert drain(parser, b"x" * 600) == [Reject("a", "line too long")]
    for _ in range(100):
        assert drain(parser, b"x" * 10_000) == []
        assert parser.buffered <= 10_100
    assert drain(parser, b"x\r\nb NOOP\r\n") == [Noop("b")]


def test_a_skipped_line_still_skips_the_literal_it_announces() -> None:
    parser = Parser(Limits(max_line=1000))
    line = b"a LOGIN " + b"x" * 5000 + b" {10+}\r\n"
    # The literal, then the rest of the same command, then the next command.
    wire = line + b"b LOGOUT\r\n" + b"\r\nc NOOP\r\n"
    assert drain(parser, wire) == [Reject("a", "line too long"), Noop("c")]


def test_a_too_long_line_that_arrives_whole() -> None:
    parser = Parser(Limits(max_line=100))
    events = drain(parser, b"a NOOP " + b"x" * 200 + b"\r\nb NOOP\r\n")
    assert events == [Reject("a", "line too long"), Noop("b")]


def test_command_size_counts_every_literal() -> None:
    parser = Parser(Limits(max_literal=100, max_command=250))
    wire = b"a LOGIN {90+}\r\n" + b"u" * 90 + b" {90+}\r\n" + b"p" * 90
    events = drain(parser, wire + b" {90+}\r\n" + b"q" * 90 + b"\r\nb NOOP\r\n")
    assert events == [Reject("a", "literal too large", "TOOBIG"), Noop("b")]


# --- continuation requests and cancel -----------------------------------------


def test_cancel_forgets_a_refused_synchronizing_literal() -> None:
    parser = Parser()
    assert drain(parser, b"a LOGIN {3}\r\n") == [NeedContinuation("a", 3)]
    parser.cancel()  # the server answered "a NO" instead of "+"
    assert drain(parser, b"b NOOP\r\n") == [Noop("b")]


def test_zero_length_literal() -> None:
    parser = Parser()
    assert drain(parser, b"a LOGIN {0}\r\n") == [NeedContinuation("a", 0)]
    assert drain(parser, b' ""\r\n') == [Login("a", "", "")]


# --- APPEND -----------------------------------------------------------------


def test_append_streams_the_message() -> None:
    parser = Parser()
    head = drain(parser, b"a APPEND Sent (\\Seen) {10}\r\n")
    assert head == [
        AppendStart("a", "Sent", ("\\Seen",), None, 10, synchronizing=True),
        NeedContinuation("a", 10),
    ]
    assert drain(parser, b"Subj") == [AppendData(b"Subj")]
    assert drain(parser, b"ect:") == [AppendData(b"ect:")]
    assert drain(parser, b" x\r\nb NOOP\r\n") == [
        AppendData(b" x"),
        Append("a", "Sent", ("\\Seen",), None, 10),
        Noop("b"),
    ]


def test_append_with_literal_plus_in_one_write() -> None:
    events = drain(Parser(), b"a APPEND {5+}\r\nDraft {3+}\r\nabc\r\n")
    assert events == [
        AppendStart("a", "Draft", (), None, 3, synchronizing=False),
        AppendData(b"abc"),
        Append("a", "Draft", (), None, 3),
    ]


def test_a_large_append_never_sits_in_the_buffer() -> None:
    parser = Parser()
    size = 5_000_000
    drain(parser, b"a APPEND INBOX {%d+}\r\n" % size)
    received = 0
    chunk = b"x" * 65536
    while received < size:
        piece = chunk[: size - received]
        for event in drain(parser, piece):
            assert isinstance(event, AppendData)
            received += len(event.data)
        assert parser.buffered == 0
    assert drain(parser, b"\r\n") == [Append("a", "INBOX", (), None, size)]


def test_append_too_large_is_no_toobig() -> None:
    parser = Parser(Limits(max_append=1000))
    assert drain(parser, b"a APPEND INBOX {1001}\r\n") == [
        Reject("a", "message too large", "TOOBIG", "NO")
    ]
    events = drain(parser, b"b APPEND INBOX {2000+}\r\n" + b"c NOOP\r\n" * 250)
    assert events == [Reject("b", "message too large", "TOOBIG", "NO")]
    assert drain(parser, b"\r\nd NOOP\r\n") == [Noop("d")]


def test_the_server_may_refuse_an_append_before_its_continuation() -> None:
    parser = Parser()
    parser.feed(b"a APPEND Nope {3}\r\n")
    assert isinstance(parser.next_event(), AppendStart)
    parser.cancel()  # "a NO [TRYCREATE]": the continuation request is gone too
    assert drain(parser, b"b NOOP\r\n") == [Noop("b")]


def test_multiappend_is_refused_after_the_first_message() -> None:
    events = drain(Parser(), b"a APPEND INBOX {1+}\r\nx {1+}\r\ny\r\nb NOOP\r\n")
    assert events == [
        AppendStart("a", "INBOX", (), None, 1, synchronizing=False),
        AppendData(b"x"),
        Reject("a", "expected the end of APPEND"),
        Noop("b"),
    ]


def test_a_malformed_append_head_is_an_ordinary_literal() -> None:
    # Unclosed flag list: the literal is not APPEND's message, so it is
    # bounded as any literal and the command is refused once whole.
    events = drain(Parser(), b"a APPEND INBOX (\\Seen {3+}\r\nabc\r\nb NOOP\r\n")
    assert [type(event) for event in events] == [Reject, Noop]
    assert events[0].tag == "a"  # type: ignore[union-attr]


# --- IDLE and AUTHENTICATE ----------------------------------------------------


def test_idle_done_even_when_pipelined() -> None:
    parser = Parser()
    parser.feed(b"a IDLE\r\ndone\r\nb NOOP\r\n")
    assert parser.next_event() == Idle("a")
    parser.expect_done()
    assert parser.next_event() == Done()
    assert parser.next_event() == Noop("b")


def test_anything_but_done_ends_idle_with_a_refusal() -> None:
    parser = Parser()
    parser.expect_done()
    assert drain(parser, b"b NOOP\r\nc NOOP\r\n") == [
        Reject(None, "expected DONE"),
        Noop("c"),
    ]


@pytest.mark.parametrize("mode", ["idle", "sasl"])
def test_a_line_too_long_ends_idle_and_authenticate(mode: str) -> None:
    parser = Parser()
    parser.expect_done() if mode == "idle" else parser.expect_sasl()

    events = drain(parser, b"x" * 70_000 + b"\r\n" + b"k2 NOOP\r\n")

    # The refusal ends the exchange: the next line is a command again.
    assert events == [Reject(None, "line too long"), Noop("k2")]


def test_a_line_too_long_with_no_short_tag_gets_an_untagged_refusal() -> None:
    events = drain(Parser(), b"y" * 100_000 + b"\r\nb NOOP\r\n")

    assert events == [Reject(None, "line too long"), Noop("b")]
    assert drain(Parser(), b"a1 " + b"y" * 100_000 + b"\r\n") == [
        Reject("a1", "line too long")
    ]


def test_sasl_responses() -> None:
    parser = Parser()
    parser.expect_sasl()
    assert drain(parser, b"AGxlZQBzM2NyM3Q=\r\n") == [
        SaslResponse(b"\x00lee\x00s3cr3t")
    ]
    parser.expect_sasl()
    assert drain(parser, b"\r\n") == [SaslResponse(b"")]
    parser.expect_sasl()
    assert drain(parser, b"*\r\n") == [SaslResponse(None)]
    parser.expect_sasl()
    assert drain(parser, b"not base64!\r\na NOOP\r\n") == [
        Reject(None, "malformed base64"),
        Noop("a"),
    ]
    assert "s3cr3t" not in repr(SaslResponse(b"s3cr3t"))


def test_utf8_accept_switch() -> None:
    parser = Parser()
    parser.utf8 = True
    assert drain(parser, b'a SELECT "Entw\xc3\xbcrfe"\r\n') == [Select("a", "Entwürfe")]


@pytest.mark.parametrize("size", [1, 2, 7, 64])
def test_any_split_of_a_session_gives_the_same_events(size: int) -> None:
    wire = (
        b"a1 LOGIN {15+}\r\nlee@example.org {8+}\r\nS3cr3t!x\r\n"
        b"a2 APPEND INBOX {5+}\r\nhello\r\n"
        b"a3 UID FETCH 1:* (FLAGS)\r\n"
        b"a4 BAD{1+}\r\n\r\n\r\n"
    )
    whole = drain(Parser(), wire)
    parser = Parser()
    split: list[Event] = []
    for start in range(0, len(wire), size):
        split += drain(parser, wire[start : start + size])
    merged = [e for e in split if not isinstance(e, AppendData)]
    data = b"".join(e.data for e in split if isinstance(e, AppendData))
    assert merged == [e for e in whole if not isinstance(e, AppendData)]
    assert data == b"hello"


def test_a_literal_without_a_tag_is_neither_asked_for_nor_held() -> None:
    parser = Parser()
    assert drain(parser, b"* LOGIN {5}\r\n") == [
        Reject(None, "missing or malformed tag")
    ]
    events = drain(parser, b"+ LOGIN {5+}\r\nb NOOP\r\nc NOOP\r\n")
    assert events == [Reject(None, "missing or malformed tag"), Noop("c")]
