"""Every command's parse, as a client sends it (RFC 3501 §6 and extensions)."""

from __future__ import annotations

import datetime

import pytest

from nubo.mail.imap.commands import (
    Append,
    Authenticate,
    Capability,
    Check,
    Close,
    Command,
    Copy,
    Create,
    Delete,
    Enable,
    Examine,
    Expunge,
    Fetch,
    GetQuota,
    GetQuotaRoot,
    Id,
    Idle,
    List,
    Login,
    Logout,
    Lsub,
    Move,
    Namespace,
    Noop,
    Rename,
    Search,
    Select,
    StartTLS,
    Status,
    Store,
    StoreMode,
    Subscribe,
    Unselect,
    Unsubscribe,
)
from nubo.mail.imap.errors import ParseError
from nubo.mail.imap.fetch import FetchAttr, FetchBody
from nubo.mail.imap.grammar import parse_command
from nubo.mail.imap.lexer import Limits
from nubo.mail.imap.search import All, Flag
from nubo.mail.imap.sequence import STAR, SequenceSet

PDT = datetime.timezone(datetime.timedelta(hours=-7))


def seq(text: str) -> SequenceSet:
    return SequenceSet.parse(text.encode())


TRANSCRIPT: list[tuple[bytes, Command]] = [
    # Any state, RFC 3501 §6.1.
    (b"a1 CAPABILITY", Capability("a1")),
    (b"a2 noop", Noop("a2")),
    (b"a3 LOGOUT", Logout("a3")),
    # Not authenticated, RFC 3501 §6.2.
    (b"t STARTTLS", StartTLS("t")),
    (b"a AUTHENTICATE PLAIN", Authenticate("a", "PLAIN")),
    (
        b"a AUTHENTICATE plain AGxlZUBleGFtcGxlLm9yZwBTM2NyM3QheA==",
        Authenticate("a", "PLAIN", b"\x00lee@example.org\x00S3cr3t!x"),
    ),
    (b"a AUTHENTICATE EXTERNAL =", Authenticate("a", "EXTERNAL", b"")),
    (b"a LOGIN lee@example.org S3cr3t!x", Login("a", "lee@example.org", "S3cr3t!x")),
    (b'a LOGIN "lee" "pa ss\\"\\\\"', Login("a", "lee", 'pa ss"\\')),
    (b"a LOGIN {3}\r\nlee {5}\r\np\xc3\xa4ss", Login("a", "lee", "päss")),
    # RFC 2971, RFC 5161, RFC 2177.
    (b"a ID NIL", Id("a", None)),
    (
        b'a ID ("name" "Thunderbird" "version" "115.0" "os" NIL)',
        Id("a", (("name", "Thunderbird"), ("version", "115.0"), ("os", None))),
    ),
    (b"a ID ()", Id("a", ())),
    (b"a ENABLE CONDSTORE utf8=accept", Enable("a", ("CONDSTORE", "UTF8=ACCEPT"))),
    (b"a IDLE", Idle("a")),
    # Authenticated, RFC 3501 §6.3.
    (b"a SELECT INBOX", Select("a", "INBOX")),
    (b"a select inbox", Select("a", "INBOX")),
    (b'a SELECT "Inbox"', Select("a", "INBOX")),
    (b"a SELECT INBOX.Sent", Select("a", "INBOX.Sent")),
    (b"a SELECT Entw&APw-rfe (CONDSTORE)", Select("a", "Entwürfe", condstore=True)),
    (b'a EXAMINE "Tom &- Jerry"', Examine("a", "Tom & Jerry")),
    (b"a CREATE Archive/2024", Create("a", "Archive/2024")),
    (b"a DELETE {5}\r\nTrash", Delete("a", "Trash")),
    (b"a RENAME Old New", Rename("a", "Old", "New")),
    (b"a SUBSCRIBE Lists", Subscribe("a", "Lists")),
    (b'a UNSUBSCRIBE "Lists"', Unsubscribe("a", "Lists")),
    (b'a LIST "" *', List("a", "", ("*",))),
    (b'a LIST "" %/Sub%', List("a", "", ("%/Sub%",))),
    (b"a LIST ~/Mail/ %", List("a", "~/Mail/", ("%",))),
    (b'a LIST "" ""', List("a", "", ("",))),
    (
        b'a LIST (SPECIAL-USE) "" "*"',
        List("a", "", ("*",), select_options=frozenset({"SPECIAL-USE"})),
    ),
    (
        b'a LIST (subscribed RECURSIVEMATCH) "" ("INBOX" Lists/%)'
        b" RETURN (CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN))",
        List(
            "a",
            "",
            ("INBOX", "Lists/%"),
            frozenset({"SUBSCRIBED", "RECURSIVEMATCH"}),
            frozenset({"CHILDREN", "SPECIAL-USE", "STATUS"}),
            ("MESSAGES", "UNSEEN"),
        ),
    ),
    (b'a LIST () "" * RETURN ()', List("a", "", ("*",))),
    (b'a LSUB "" *', Lsub("a", "", "*")),
    (
        b"a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN"
        b" HIGHESTMODSEQ SIZE APPENDLIMIT DELETED)",
        Status(
            "a",
            "INBOX",
            (
                "MESSAGES",
                "RECENT",
                "UIDNEXT",
                "UIDVALIDITY",
                "UNSEEN",
                "HIGHESTMODSEQ",
                "SIZE",
                "APPENDLIMIT",
                "DELETED",
            ),
        ),
    ),
    (
        b"a APPEND Sent {11}\r\nSubject: x\n",
        Append("a", "Sent", (), None, 11, b"Subject: x\n"),
    ),
    (
        b'a APPEND Drafts (\\Draft \\seen) "17-Jul-1996 02:44:25 -0700" {1+}\r\nx',
        Append(
            "a",
            "Drafts",
            ("\\Draft", "\\Seen"),
            datetime.datetime(1996, 7, 17, 2, 44, 25, tzinfo=PDT),
            1,
            b"x",
        ),
    ),
    (
        b'a APPEND INBOX () " 7-Jul-1996 02:44:25 +0000" {0}\r\n',
        Append(
            "a",
            "INBOX",
            (),
            datetime.datetime(1996, 7, 7, 2, 44, 25, tzinfo=datetime.UTC),
            0,
            b"",
        ),
    ),
    (b"a NAMESPACE", Namespace("a")),
    (b'a GETQUOTA ""', GetQuota("a", "")),
    (b"a GETQUOTAROOT INBOX", GetQuotaRoot("a", "INBOX")),
    # Selected, RFC 3501 §6.4.
    (b"a CHECK", Check("a")),
    (b"a CLOSE", Close("a")),
    (b"a UNSELECT", Unselect("a")),
    (b"a EXPUNGE", Expunge("a")),
    (b"a UID EXPUNGE 3:5,9", Expunge("a", seq("3:5,9"))),
    (b"a SEARCH ALL", Search("a", None, All())),
    (b"a UID SEARCH UNSEEN", Search("a", None, Flag("\\Seen", False), uid=True)),
    (
        b"a FETCH 1:* (FLAGS UID)",
        Fetch("a", seq("1:*"), (FetchAttr("FLAGS"), FetchAttr("UID"))),
    ),
    (
        b"a UID FETCH 559:* (UID FLAGS)",
        Fetch("a", seq("559:*"), (FetchAttr("UID"), FetchAttr("FLAGS")), uid=True),
    ),
    (b"a FETCH 2 BODY[]", Fetch("a", seq("2"), (FetchBody(),))),
    (
        b"a FETCH 1:3 (FLAGS) (CHANGEDSINCE 12345)",
        Fetch("a", seq("1:3"), (FetchAttr("FLAGS"),), changedsince=12345),
    ),
    (
        b"a STORE 2:4 +FLAGS (\\Deleted)",
        Store("a", seq("2:4"), StoreMode.ADD, ("\\Deleted",)),
    ),
    (
        b"a UID STORE 7 -flags.silent \\Seen $Junk",
        Store("a", seq("7"), StoreMode.REMOVE, ("\\Seen", "$Junk"), True, True),
    ),
    (
        b"a STORE 1 FLAGS ()",
        Store("a", seq("1"), StoreMode.REPLACE, ()),
    ),
    (
        b"a STORE 1 (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Flagged)",
        Store(
            "a", seq("1"), StoreMode.ADD, ("\\Flagged",), True, unchangedsince=320162338
        ),
    ),
    (b"a COPY 2:4 Archive", Copy("a", seq("2:4"), "Archive")),
    (b"a UID COPY 10,12 &U,BTFw-", Copy("a", seq("10,12"), "台北", uid=True)),
    (b"a MOVE * Trash", Move("a", SequenceSet(((STAR, STAR),)), "Trash")),
    (b"a UID MOVE 1:* Junk", Move("a", seq("1:*"), "Junk", uid=True)),
]


@pytest.mark.parametrize(("wire", "command"), TRANSCRIPT, ids=lambda v: repr(v)[:40])
def test_command(wire: bytes, command: Command) -> None:
    assert parse_command(wire) == command


def test_labels_name_uid_variants() -> None:
    assert parse_command(b"a UID FETCH 1 UID").label == "UID FETCH"
    assert parse_command(b"a FETCH 1 UID").label == "FETCH"
    assert parse_command(b"a UID EXPUNGE 1").label == "UID EXPUNGE"
    assert parse_command(b"a EXPUNGE").label == "EXPUNGE"
    assert parse_command(b"a NOOP").label == "NOOP"


def test_credentials_stay_out_of_reprs() -> None:
    assert "S3cr3t" not in repr(parse_command(b"a LOGIN lee S3cr3t!x"))
    assert "AGxl" not in repr(parse_command(b"a AUTHENTICATE PLAIN AGxlZQBz"))


@pytest.mark.parametrize(
    ("wire", "tag"),
    [
        (b"a BOGUS", "a"),
        (b"a UID NOOP", "a"),
        (b"a UID", "a"),
        (b"a", "a"),
        (b"a ", "a"),
        (b"+a NOOP", None),
        (b"* NOOP", None),
        (b"", None),
        (b" a NOOP", None),
        (b"a  NOOP", "a"),
        (b"a NOOP extra", "a"),
        (b"a LOGIN lee", "a"),
        (b"a LOGIN lee pass word", "a"),
        (b"a LOGIN {3}\r\nlee {5}\r\np\xff", "a"),  # not UTF-8
        (b"a LOGIN {9}\r\nlee pass", "a"),  # literal shorter than announced
        (b'a LOGIN "lee pass', "a"),
        (b'a LOGIN "a\\x" b', "a"),  # only \" and \\ may be escaped
        (b"a LOGIN NIL{3}\r\nabc", "a"),
        (b"a AUTHENTICATE PLAIN AGx!", "a"),
        (b"a AUTHENTICATE PLAIN AGxlZQBz=", "a"),  # bad padding
        (b"a SELECT", "a"),
        (b"a SELECT Entw\xc3\xbcrfe", "a"),  # 8-bit without UTF8=ACCEPT
        (b"a SELECT &AGE-", "a"),
        (b"a SELECT INBOX (QRESYNC)", "a"),
        (b"a ENABLE", "a"),
        (b'a LIST ""', "a"),
        (b'a LIST (BOGUS) "" *', "a"),
        (b'a LIST (RECURSIVEMATCH) "" *', "a"),
        (b'a LIST "" * RETURN (MYRIGHTS)', "a"),
        (b'a LIST "" * (CHILDREN)', "a"),
        (b"a STATUS INBOX ()", "a"),
        (b"a STATUS INBOX (MESSAGES BOGUS)", "a"),
        (b"a STATUS INBOX MESSAGES", "a"),
        (b"a APPEND INBOX", "a"),
        (b'a APPEND INBOX "hello"', "a"),
        (b'a APPEND INBOX "31-Feb-2024 00:00:00 +0000" {1}\r\nx', "a"),
        (b'a APPEND INBOX "1-Jan-2024 00:00:00 +0099" {1}\r\nx', "a"),
        (b'a APPEND INBOX "1-Foo-2024 00:00:00 +0000" {1}\r\nx', "a"),
        (b"a APPEND INBOX (\\Seen {1}\r\nx", "a"),
        (b"a APPEND INBOX (\\*) {1}\r\nx", "a"),
        (b"a FETCH 1", "a"),
        (b"a FETCH 0 FLAGS", "a"),
        (b"a FETCH 1:2 ()", "a"),
        (b"a FETCH 1 (FLAGS", "a"),
        (b"a FETCH 1 BOGUS", "a"),
        (b"a FETCH 1 (FLAGS) (VANISHED)", "a"),
        (b"a FETCH 1 (FLAGS) (CHANGEDSINCE 0)", "a"),
        (b"a FETCH 1 (FLAGS) (CHANGEDSINCE 9223372036854775808)", "a"),
        (b"a STORE 1 FLAGS", "a"),
        (b"a STORE 1 +-FLAGS (\\Seen)", "a"),
        (b"a STORE 1 ++FLAGS (\\Seen)", "a"),
        (b"a STORE 1 FLAGS.LOUD (\\Seen)", "a"),
        (b"a STORE 1 +FLAGS (\\*)", "a"),
        (b"a STORE 1 (UNCHANGEDSINCE x) FLAGS ()", "a"),
        (b"a COPY 1", "a"),
        (b"a MOVE 1:x Trash", "a"),
        (b"a UID EXPUNGE", "a"),
        (b"a EXPUNGE 1", "a"),
        (b"a SEARCH", "a"),
        (b"a GETQUOTA", "a"),
        (b"a ID", "a"),
        (b'a ID ("name")', "a"),
    ],
)
def test_malformed_commands_are_refused_with_their_tag(
    wire: bytes, tag: str | None
) -> None:
    with pytest.raises(ParseError) as caught:
        parse_command(wire)
    assert caught.value.tag == tag
    assert caught.value.status == "BAD"


def test_unknown_command_says_so() -> None:
    with pytest.raises(ParseError, match="unknown command"):
        parse_command(b"x1 XYZZY")


def test_utf8_accept_takes_utf8_mailbox_names() -> None:
    assert parse_command(b'a SELECT "Entw\xc3\xbcrfe"', utf8=True) == Select(
        "a", "Entwürfe"
    )
    # RFC 6855 §3: no modified UTF-7 then, "&" is itself.
    assert parse_command(b'a SELECT "Tom & Jerry"', utf8=True) == Select(
        "a", "Tom & Jerry"
    )
    assert parse_command(b"a SELECT Sent", utf8=True) == Select("a", "Sent")


def test_argument_and_depth_limits() -> None:
    limits = Limits(max_args=10, max_depth=3)
    parse_command(b"a FETCH 1 (FLAGS UID)", limits)
    with pytest.raises(ParseError, match="too many arguments"):
        parse_command(b"a FETCH 1 (" + b" ".join([b"UID"] * 20) + b")", limits)
    with pytest.raises(ParseError, match="nested too deeply"):
        parse_command(b"a SEARCH ((((ALL))))", limits)


def test_the_default_depth_guards_the_stack() -> None:
    deep = b"a SEARCH " + b"(" * 5000 + b"ALL" + b")" * 5000
    with pytest.raises(ParseError, match="nested too deeply"):
        parse_command(deep)
    chain = b"a SEARCH " + b"NOT " * 5000 + b"ALL"
    with pytest.raises(ParseError, match="nested too deeply"):
        parse_command(chain)
