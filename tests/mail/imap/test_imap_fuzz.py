"""Fuzzing the command parser: no input raises anything but ParseError.

Bounded for CI by ``max_examples``; the deadline (per example, far above
the microseconds a command takes) catches input that makes parsing
quadratic, not slow machines.
"""

from __future__ import annotations

import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nubo.mail.imap.commands import Command
from nubo.mail.imap.errors import ParseError
from nubo.mail.imap.grammar import parse_command
from nubo.mail.imap.lexer import Limits
from nubo.mail.imap.parser import Parser

FUZZ = settings(
    max_examples=1000,
    deadline=datetime.timedelta(seconds=2),
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
SMALL = Limits(
    max_line=200,
    max_literal=50,
    max_command=400,
    max_append=100,
    max_depth=8,
    max_args=40,
)

NAMES = [
    "CAPABILITY",
    "NOOP",
    "LOGOUT",
    "STARTTLS",
    "AUTHENTICATE",
    "LOGIN",
    "ID",
    "ENABLE",
    "IDLE",
    "SELECT",
    "EXAMINE",
    "CREATE",
    "DELETE",
    "RENAME",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "LIST",
    "LSUB",
    "STATUS",
    "APPEND",
    "NAMESPACE",
    "GETQUOTA",
    "GETQUOTAROOT",
    "CHECK",
    "CLOSE",
    "UNSELECT",
    "EXPUNGE",
    "SEARCH",
    "FETCH",
    "STORE",
    "COPY",
    "MOVE",
    "UID FETCH",
    "UID SEARCH",
    "UID STORE",
    "UID COPY",
    "UID MOVE",
    "UID EXPUNGE",
]
TOKENS = [
    " ",
    "(",
    ")",
    '"',
    "\\",
    "{",
    "}",
    "+",
    "[",
    "]",
    "<",
    ">",
    ".",
    "*",
    "%",
    "&",
    "-",
    ":",
    ",",
    "=",
    "0",
    "1",
    "4294967296",
    "1:*",
    "3:5,7",
    "NIL",
    "INBOX",
    "&APw-",
    "&A",
    "\\Seen",
    "\\*",
    "$Junk",
    "FLAGS",
    "+FLAGS.SILENT",
    "BODY[",
    "BODY.PEEK[",
    "HEADER.FIELDS",
    "(Subject From)",
    "MIME",
    "TEXT",
    "1.2",
    "<0.10>",
    "OR",
    "NOT",
    "UID",
    "SINCE",
    "1-Feb-1994",
    "30-Feb-1994",
    "CHARSET",
    "UTF-8",
    "KOI8-R",
    '"17-Jul-1996 02:44:25 -0700"',
    "RETURN",
    "SPECIAL-USE",
    "CHILDREN",
    "STATUS",
    "MESSAGES",
    "CHANGEDSINCE",
    "UNCHANGEDSINCE",
    "MODSEQ",
    "CONDSTORE",
    "PLAIN",
    "AGxlZQBz",
    "ALL",
    "{3}\r\nabc",
    "{3+}\r\nabc",
    "{0}\r\n",
    "{9}\r\nab",
    "\r\n",
    "\n",
    "\x00",
    "\xff",
    "\xc3\xbc",
]

# Real client commands, each mutated a few times: they reach the deep parts
# of the grammar, which random bytes rarely do.
SEEDS = [
    b"a1 LOGIN {15+}\r\nlee@example.org {8+}\r\nS3cr3t!x",
    b"a AUTHENTICATE PLAIN AGxlZQBz",
    b'a ID ("name" "Thunderbird" "version" NIL)',
    b"a ENABLE CONDSTORE",
    b'a LIST (SPECIAL-USE SUBSCRIBED) "" ("*" %) RETURN (CHILDREN STATUS (UNSEEN))',
    b'a LSUB "" %',
    b"a STATUS Entw&APw-rfe (MESSAGES UIDNEXT HIGHESTMODSEQ)",
    b"a SELECT INBOX (CONDSTORE)",
    b"a RENAME {3}\r\nold new",
    b'a APPEND Sent (\\Seen $Junk) "17-Jul-1996 02:44:25 -0700" {3+}\r\nabc',
    b"a UID FETCH 1:* (FLAGS UID) (CHANGEDSINCE 5)",
    b"a FETCH 1,3:5 (BODY.PEEK[1.2.HEADER.FIELDS.NOT (Received)]<0.100> ENVELOPE)",
    b"a FETCH 2 (BODY[3.MIME] BODY[TEXT] RFC822.SIZE BODYSTRUCTURE)",
    b"a UID STORE 1:5 (UNCHANGEDSINCE 9) +FLAGS.SILENT (\\Seen)",
    b"a STORE 2 -FLAGS \\Deleted $Junk",
    b"a UID MOVE 4:* &U,BTFw-",
    b"a COPY 1 {5}\r\nTrash",
    b"a UID EXPUNGE 3,5",
    b'a SEARCH CHARSET UTF-8 OR OR FROM "x" TO {2}\r\nab NOT (SEEN 1:5)',
    b"a UID SEARCH SINCE 1-Feb-1994 LARGER 10 UID 3:* HEADER List-Id x",
    b'a SEARCH MODSEQ "/flags/\\\\draft" all 620162338 KEYWORD $Junk',
    b"a GETQUOTAROOT INBOX",
]
TAGS = ["a", "A1", "x]", "*", "+"]


def _mutate(seed: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    data = seed
    for kind, where, token in edits:
        at = where % (len(data) + 1)
        if kind == 0:  # insert
            data = data[:at] + token + data[at:]
        elif kind == 1:  # delete a few octets
            data = data[:at] + data[at + len(token) + 1 :]
        else:  # replace
            data = data[:at] + token + data[at + len(token) :]
    return data


mutated = st.builds(
    _mutate,
    st.sampled_from(SEEDS),
    st.lists(
        st.tuples(
            st.integers(0, 2),
            st.integers(0, 500),
            st.sampled_from(TOKENS).map(lambda t: t.encode("latin-1"))
            | st.binary(min_size=1, max_size=3),
        ),
        max_size=3,
    ),
)
command_like = mutated | st.builds(
    lambda tag, name, parts: (
        (tag + " " + name + " ").encode("latin-1") + b"".join(parts)
    ),
    st.sampled_from(TAGS),
    st.sampled_from(NAMES),
    st.lists(
        st.sampled_from(TOKENS).map(lambda t: t.encode("latin-1"))
        | st.binary(max_size=3),
        max_size=25,
    ),
)


def _parse(data: bytes, limits: Limits) -> None:
    try:
        command = parse_command(data, limits)
    except ParseError as error:
        assert error.status in ("BAD", "NO")
        return
    assert isinstance(command, Command)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    _parse(data, Limits())


@FUZZ
@given(command_like)
def test_command_like_input(data: bytes) -> None:
    _parse(data, Limits())
    _parse(data, SMALL)


@settings(FUZZ, max_examples=400)
@given(
    st.lists(command_like | st.binary(max_size=40), max_size=6),
    st.lists(st.integers(1, 50), min_size=1, max_size=10),
    st.lists(st.sampled_from(["idle", "sasl", "cancel", "utf8", "none"]), max_size=6),
)
def test_the_incremental_parser_never_raises(
    pieces: list[bytes], splits: list[int], switches: list[str]
) -> None:
    wire = b"\r\n".join(pieces) + b"\r\n"
    parser = Parser(SMALL)
    position, turn = 0, 0
    while position < len(wire):
        size = splits[turn % len(splits)]
        parser.feed(wire[position : position + size])
        position += size
        while parser.next_event() is not None:
            if switches:
                switch = switches[turn % len(switches)]
                if switch == "idle":
                    parser.expect_done()
                elif switch == "sasl":
                    parser.expect_sasl()
                elif switch == "cancel":
                    parser.cancel()
                elif switch == "utf8":
                    parser.utf8 = not parser.utf8
            turn += 1
        # Bounded: what is held never exceeds one command and a read.
        assert parser.buffered <= SMALL.max_command + SMALL.max_line + 64
