"""FETCH and UID FETCH over real sockets (RFC 3501 §6.4.5, §6.4.8, §7.4.2):
every item byte for byte, the sample messages against what Dovecot 2.3
answers for them (``tests/mail/test_mime_samples.py``), partial fetches,
NUL octets, \\Seen, messages expunged by another session, and a long
FETCH 1:*."""

from __future__ import annotations

from datetime import UTC, datetime

from nubo.mail.message import parse_message
from tests.mail.imap.imap_rig import Client, ImapRig, imap_rig
from tests.mail.mailstore_rig import MailRig
from tests.mail.test_mime_samples import EXPECTED, SECTIONS, sample

ANN = "ann@example.org"
WHEN = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)
DATE = b'"01-Mar-2026 12:30:05 +0000"'

MULTIPART = (
    b"From: Ann <ann@example.net>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: parts\r\n"
    b"X-Folded: one\r\n two\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--b\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"first part\r\n"
    b"--b\r\n"
    b"Content-Type: text/html\r\n"
    b"\r\n"
    b"<p>second</p>\r\n"
    b"--b--\r\n"
)
HEADER, TEXT = MULTIPART.split(b"\r\n\r\n", 1)
HEADER += b"\r\n\r\n"


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n%s" % (len(data), data)


def tagged(lines: list[bytes]) -> bytes:
    """The tagged line without its tag."""
    return lines[-1].split(b" ", 1)[1]


async def _store(
    rig: ImapRig, raw: bytes, flags: tuple[str, ...] = (), mailbox: str = "INBOX"
) -> int:
    stored = await rig.mail.store.append(
        rig.users[ANN], mailbox, raw, flags=flags, internal_date=WHEN
    )
    return stored.uid


async def _selected(rig: ImapRig, command: str = "SELECT INBOX") -> Client:
    client = await rig.client(login=ANN)
    await client.ok(command)
    return client


async def test_every_attribute(mail: MailRig) -> None:
    raw = sample("simple_text")
    async with imap_rig(mail) as rig:
        await _store(rig, raw, ("\\Flagged", "Work", "\\Answered"))
        client = await _selected(rig)
        expected = EXPECTED["simple_text"]

        lines = await client.ok(
            "FETCH 1 (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE)"
        )
        assert lines == [
            b"* 1 FETCH (FLAGS (\\Answered \\Flagged Work) INTERNALDATE "
            + DATE
            + b" RFC822.SIZE 571 ENVELOPE "
            + expected.envelope
            + b' BODY ("text" "plain" ("charset" "utf-8" "format" "flowed") NIL NIL'
            b' "7bit" 79 5) BODYSTRUCTURE ' + expected.bodystructure + b")\r\n",
            b"t3 OK FETCH completed\r\n",
        ]

        # UID comes first, asked or not; an item asked twice answers once.
        lines = await client.ok("FETCH 1 (RFC822.SIZE UID RFC822.SIZE)")
        assert lines[0] == b"* 1 FETCH (UID 1 RFC822.SIZE 571)\r\n"
        lines = await client.ok("UID FETCH 1 RFC822.SIZE")
        assert lines[0] == b"* 1 FETCH (UID 1 RFC822.SIZE 571)\r\n"

        # The macros (RFC 3501 §6.4.5).
        lines = await client.ok("FETCH 1 FAST")
        assert lines[0] == (
            b"* 1 FETCH (FLAGS (\\Answered \\Flagged Work) INTERNALDATE "
            + DATE
            + b" RFC822.SIZE 571)\r\n"
        )
        lines = await client.ok("FETCH 1 ALL")
        assert lines[0].endswith(b" ENVELOPE " + expected.envelope + b")\r\n")
        lines = await client.ok("FETCH 1 FULL")
        assert lines[0].endswith(b' "7bit" 79 5))\r\n')


async def test_samples_answer_as_dovecot(mail: MailRig) -> None:
    """RFC822.SIZE, ENVELOPE and BODYSTRUCTURE of every sample message, as
    ``test_mime_samples`` recorded them against Dovecot 2.3, now through
    the server; BODY[section] of each recorded section."""
    names = sorted(EXPECTED)
    async with imap_rig(mail) as rig:
        for name in names:
            await _store(rig, sample(name))
        client = await _selected(rig, "EXAMINE INBOX")

        for number, name in enumerate(names, 1):
            expected = EXPECTED[name]
            lines = await client.ok(
                f"FETCH {number} (RFC822.SIZE ENVELOPE BODYSTRUCTURE)"
            )
            assert lines[0] == (
                b"* %d FETCH (RFC822.SIZE %d ENVELOPE %s BODYSTRUCTURE %s)\r\n"
                % (number, expected.size, expected.envelope, expected.bodystructure)
            ), name

        for name, sections in SECTIONS.items():
            number = names.index(name) + 1
            for spec, data in sections.items():
                lines = await client.ok(f"FETCH {number} BODY.PEEK[{spec}]")
                value = literal(data) if data else b'""'
                assert lines[0] == (
                    b"* %d FETCH (BODY[%s] %s)\r\n" % (number, spec.encode(), value)
                ), (name, spec)


async def test_sections(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await _store(rig, MULTIPART)
        client = await _selected(rig, "EXAMINE INBOX")

        async def one(items: str) -> bytes:
            lines = await client.ok(f"FETCH 1 ({items})")
            assert len(lines) == 2, lines
            return lines[0]

        assert await one("BODY[]") == b"* 1 FETCH (BODY[] %s)\r\n" % literal(MULTIPART)
        assert await one("RFC822") == b"* 1 FETCH (RFC822 %s)\r\n" % literal(MULTIPART)
        assert await one("BODY[HEADER]") == (
            b"* 1 FETCH (BODY[HEADER] %s)\r\n" % literal(HEADER)
        )
        assert await one("RFC822.HEADER") == (
            b"* 1 FETCH (RFC822.HEADER %s)\r\n" % literal(HEADER)
        )
        assert await one("BODY[TEXT]") == (
            b"* 1 FETCH (BODY[TEXT] %s)\r\n" % literal(TEXT)
        )
        assert await one("RFC822.TEXT") == (
            b"* 1 FETCH (RFC822.TEXT %s)\r\n" % literal(TEXT)
        )
        assert await one("BODY[1] BODY[2] BODY[2.MIME]") == (
            b"* 1 FETCH (BODY[1] {10}\r\nfirst part BODY[2] {13}\r\n<p>second</p>"
            b" BODY[2.MIME] {27}\r\nContent-Type: text/html\r\n\r\n)\r\n"
        )
        # Field names match in any case; a folded field keeps its fold.
        fields = b"Subject: parts\r\nX-Folded: one\r\n two\r\n"
        assert await one("BODY[HEADER.FIELDS (subject X-FOLDED Nope)]") == (
            b"* 1 FETCH (BODY[HEADER.FIELDS (subject X-FOLDED Nope)] %s)\r\n"
            % literal(fields + b"\r\n")
        )
        assert await one("BODY[HEADER.FIELDS.NOT (From To Content-Type)]") == (
            b"* 1 FETCH (BODY[HEADER.FIELDS.NOT (From To Content-Type)] %s)\r\n"
            % literal(fields + b"MIME-Version: 1.0\r\n\r\n")
        )
        # Parts that do not exist, and HEADER of a part that is no message.
        assert await one("BODY[3] BODY[1.1] BODY[1.HEADER]") == (
            b'* 1 FETCH (BODY[3] "" BODY[1.1] "" BODY[1.HEADER] "")\r\n'
        )


async def test_partial_fetches(mail: MailRig) -> None:
    """RFC 3501 §6.4.5: <origin.count> octets; the answer names only the
    origin; past the end is the empty string."""
    size = len(MULTIPART)
    async with imap_rig(mail) as rig:
        await _store(rig, MULTIPART)
        client = await _selected(rig, "EXAMINE INBOX")

        lines = await client.ok("FETCH 1 (BODY[]<0.4> BODY.PEEK[]<6.3>)")
        assert lines[0] == b"* 1 FETCH (BODY[]<0> {4}\r\nFrom BODY[]<6> {3}\r\nAnn)\r\n"
        lines = await client.ok(f"FETCH 1 BODY[]<{size - 4}.100>")
        assert lines[0] == b"* 1 FETCH (BODY[]<%d> {4}\r\n--\r\n)\r\n" % (size - 4)
        lines = await client.ok(f"FETCH 1 (BODY[]<{size}.1> BODY[2]<50.1>)")
        assert lines[0] == b'* 1 FETCH (BODY[]<%d> "" BODY[2]<50> "")\r\n' % size
        lines = await client.ok("FETCH 1 (BODY[2]<3.6> BODY[TEXT]<0.8>)")
        assert lines[0] == (
            b"* 1 FETCH (BODY[2]<3> {6}\r\nsecond BODY[TEXT]<0> {8}\r\npreamble)\r\n"
        )
        lines = await client.ok("FETCH 1 BODY[HEADER.FIELDS (To)]<4.3>")
        assert lines[0] == b"* 1 FETCH (BODY[HEADER.FIELDS (To)]<4> {3}\r\nbob)\r\n"
        lines = await client.command("FETCH 1 BODY[]<0.0>")
        assert tagged(lines).startswith(b"BAD ")


async def test_nul_octets(mail: MailRig) -> None:
    """NUL cannot be sent (RFC 3501 §4.3): 0x80 in body data, one octet for
    one so sizes agree; U+FFFD in the ENVELOPE. Dovecot 2.3 answered
    exactly these bytes for this message."""
    raw = sample("nul_bytes")
    async with imap_rig(mail) as rig:
        await _store(rig, raw)
        client = await _selected(rig)

        lines = await client.ok("FETCH 1 (RFC822.SIZE BODY.PEEK[] ENVELOPE)")
        assert lines[0] == (
            b"* 1 FETCH (RFC822.SIZE 134 BODY[] {134}\r\n"
            b"From: Nul <nul@example.net>\r\nTo: lee@example.org\r\n"
            b"Subject: a\x80b\r\nDate: Tue, 11 Mar 2025 09:00:00 +0000\r\n\r\n"
            b"body with \x80 a NUL\r\nand more\r\n"
            b' ENVELOPE ("Tue, 11 Mar 2025 09:00:00 +0000" {5}\r\na\xef\xbf\xbdb'
            b' (("Nul" NIL "nul" "example.net")) (("Nul" NIL "nul" "example.net"))'
            b' (("Nul" NIL "nul" "example.net")) ((NIL NIL "lee" "example.org"))'
            b" NIL NIL NIL NIL))\r\n"
        )
        lines = await client.ok("FETCH 1 (BODY.PEEK[TEXT]<5.100> BODY.PEEK[1]<10.1>)")
        assert lines[0] == (
            b"* 1 FETCH (BODY[TEXT]<5> {24}\r\nwith \x80 a NUL\r\nand more\r\n"
            b" BODY[1]<10> {1}\r\n\x80)\r\n"
        )
        assert b"\x00" not in b"".join(lines)


async def test_seen_is_set_by_body_fetches(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        for n in range(5):
            await _store(rig, MULTIPART, ("\\Seen",) if n == 4 else ())
        client = await _selected(rig)
        other = await _selected(rig)

        # PEEK and the header alone leave the message unseen.
        lines = await client.ok("FETCH 1 (BODY.PEEK[1] RFC822.HEADER)")
        assert b"FLAGS" not in lines[0]
        # BODY[...] sets \Seen and says so, FLAGS before the data.
        lines = await client.ok("FETCH 1 BODY[1]")
        assert lines == [
            b"* 1 FETCH (FLAGS (\\Seen) BODY[1] {10}\r\nfirst part)\r\n",
            b"t4 OK FETCH completed\r\n",
        ]
        lines = await client.ok("FETCH 1 BODY[1]")  # seen already: no FLAGS
        assert lines[0] == b"* 1 FETCH (BODY[1] {10}\r\nfirst part)\r\n"
        lines = await client.ok("UID FETCH 2 (RFC822.SIZE RFC822.TEXT)")
        assert lines[0] == (
            b"* 2 FETCH (UID 2 FLAGS (\\Seen) RFC822.SIZE %d RFC822.TEXT %s)\r\n"
            % (len(MULTIPART), literal(TEXT))
        )
        lines = await client.ok("FETCH 3 (FLAGS RFC822)")
        assert lines[0] == (
            b"* 3 FETCH (FLAGS (\\Seen) RFC822 %s)\r\n" % literal(MULTIPART)
        )
        lines = await client.ok("FETCH 4:5 BODY[2.MIME]")
        assert lines[:2] == [
            b"* 4 FETCH (FLAGS (\\Seen) BODY[2.MIME] {27}\r\n"
            b"Content-Type: text/html\r\n\r\n)\r\n",
            b"* 5 FETCH (BODY[2.MIME] {27}\r\nContent-Type: text/html\r\n\r\n)\r\n",
        ]

        # This session was told already; the other one learns now.
        assert await client.ok("NOOP") == [b"t9 OK completed\r\n"]
        lines = await other.ok("NOOP")
        assert sorted(lines[:-1]) == [
            b"* %d FETCH (UID %d FLAGS (\\Seen))\r\n" % (n, n) for n in (1, 2, 3, 4)
        ]

        # A mailbox selected read-only is never changed (RFC 3501 §6.3.2).
        await _store(rig, MULTIPART)
        lines = await client.ok("EXAMINE INBOX")
        lines = await client.ok("FETCH 6 (BODY[1] FLAGS)")
        assert lines[0] == b"* 6 FETCH (BODY[1] {10}\r\nfirst part FLAGS ())\r\n"


async def test_numbers_and_uids(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        client = await _selected(rig)
        # An empty mailbox: * names no message; UID sets name nothing.
        assert tagged(await client.command("FETCH 1:* FLAGS")).startswith(b"BAD ")
        assert await client.ok("UID FETCH 1:* FLAGS") == [
            b"t4 OK UID FETCH completed\r\n"
        ]

        for _ in range(4):
            await _store(rig, MULTIPART)
        box = await rig.mail.store.get_mailbox(rig.users[ANN], "INBOX")
        await rig.mail.store.store_flags(box.id, [2], "add", ["\\Deleted"])
        await rig.mail.store.expunge(box.id)
        await client.ok("NOOP")  # UIDs 1, 3, 4 as messages 1 to 3

        lines = await client.ok("FETCH 2:* UID")
        assert lines[:-1] == [b"* 2 FETCH (UID 3)\r\n", b"* 3 FETCH (UID 4)\r\n"]
        lines = await client.ok("UID FETCH 2:3 FLAGS")
        assert lines[:-1] == [b"* 2 FETCH (UID 3 FLAGS ())\r\n"]
        # "UID 9:*" names the last message (RFC 3501 §6.4.8, IMAP-02).
        lines = await client.ok("UID FETCH 9:* FLAGS")
        assert lines[:-1] == [b"* 3 FETCH (UID 4 FLAGS ())\r\n"]
        lines = await client.ok("UID FETCH 2,7 FLAGS")  # no such UIDs
        assert lines == [b"t9 OK UID FETCH completed\r\n"]
        lines = await client.command("FETCH 4 FLAGS")
        assert tagged(lines).startswith(b"BAD ")

        # MODSEQ needs CONDSTORE, which nubo does not offer yet.
        assert tagged(await client.command("FETCH 1 (MODSEQ)")).startswith(b"BAD ")
        lines = await client.command("FETCH 1 (FLAGS) (CHANGEDSINCE 1)")
        assert tagged(lines).startswith(b"BAD ")


async def test_expunged_by_another_session(mail: MailRig) -> None:
    """RFC 2180 §4.1.2, RFC 5530: FETCH by number of a message another
    session expunged answers the others and NO [EXPUNGEISSUED]; the EXPUNGE
    is announced only by a command that may (RFC 3501 §7.4.1)."""
    async with imap_rig(mail) as rig:
        for _ in range(4):
            await _store(rig, MULTIPART)
        client = await _selected(rig)
        other = await _selected(rig)
        await other.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        await other.ok("EXPUNGE")

        lines = await client.command("FETCH 1:3 (UID BODY.PEEK[1])")
        assert lines == [
            b"* 1 FETCH (UID 1 BODY[1] {10}\r\nfirst part)\r\n",
            b"* 3 FETCH (UID 3 BODY[1] {10}\r\nfirst part)\r\n",
            b"t3 NO [EXPUNGEISSUED] Some messages were expunged\r\n",
        ]
        # Numbers keep their meaning through FETCH, STORE and SEARCH.
        lines = await client.command("FETCH 2 FLAGS")
        assert lines == [b"t4 NO [EXPUNGEISSUED] Some messages were expunged\r\n"]
        lines = await client.ok("FETCH 4 UID")
        assert lines[0] == b"* 4 FETCH (UID 4)\r\n"
        lines = await client.command("STORE 2:3 +FLAGS (\\Flagged)")
        assert lines == [
            b"* 3 FETCH (FLAGS (\\Flagged))\r\n",
            b"t6 NO [EXPUNGEISSUED] Some messages were expunged\r\n",
        ]
        lines = await client.ok("SEARCH ALL")
        assert lines[0] == b"* SEARCH 1 3 4\r\n"
        assert not any(b"EXPUNGE " in line for line in lines)

        # NOOP may tell, and numbers shift after it.
        lines = await client.ok("NOOP")
        assert lines == [b"* 2 EXPUNGE\r\n", b"t8 OK completed\r\n"]
        lines = await client.ok("FETCH 2:3 UID")
        assert lines[:-1] == [b"* 2 FETCH (UID 3)\r\n", b"* 3 FETCH (UID 4)\r\n"]


async def test_uid_fetch_of_a_message_expunged_elsewhere(mail: MailRig) -> None:
    """UID FETCH ignores UIDs that no longer exist (RFC 3501 §6.4.8), and
    may announce the EXPUNGE, after its data."""
    async with imap_rig(mail) as rig:
        for _ in range(3):
            await _store(rig, MULTIPART)
        client = await _selected(rig)
        other = await _selected(rig)
        await other.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        await other.ok("EXPUNGE")

        lines = await client.ok("UID FETCH 1:3 FLAGS")
        assert lines == [
            b"* 1 FETCH (UID 1 FLAGS ())\r\n",
            b"* 3 FETCH (UID 3 FLAGS ())\r\n",
            b"* 2 EXPUNGE\r\n",
            b"t3 OK [EXPUNGEISSUED] Some messages were expunged\r\n",
        ]


async def test_a_thousand_messages(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await _store(rig, MULTIPART)
        box = await rig.mail.store.get_mailbox(rig.users[ANN], "INBOX")
        count = 1
        while count < 1000:  # copies double the mailbox in one transaction
            more = min(count, 1000 - count)
            await rig.mail.store.copy(box.id, range(1, more + 1), box.id)
            count += more
        await rig.mail.store.store_flags(box.id, [500], "add", ["\\Seen"])
        client = await _selected(rig)

        lines = await client.ok("FETCH 1:* (FLAGS UID)")
        expected = [
            b"* %d FETCH (UID %d FLAGS ())\r\n" % (n, n) for n in range(1, 1001)
        ]
        expected[499] = b"* 500 FETCH (UID 500 FLAGS (\\Seen))\r\n"
        assert lines[:-1] == expected
        assert lines[-1] == b"t3 OK FETCH completed\r\n"

        # Bodies too, each from its own blob read, in order.
        lines = await client.ok("UID FETCH 990:* BODY.PEEK[1]")
        assert lines[:-1] == [
            b"* %d FETCH (UID %d BODY[1] {10}\r\nfirst part)\r\n" % (n, n)
            for n in range(990, 1001)
        ]


def test_the_multipart_sample_is_what_the_tests_assume() -> None:
    info = parse_message(MULTIPART)
    assert [part.subtype for part in info.structure.parts] == ["plain", "html"]
