"""STORE, COPY, MOVE and EXPUNGE over real sockets, with their UID forms
(RFC 3501 §6.4.3, §6.4.6 to §6.4.8, RFC 4315, RFC 6851): the answers byte
for byte, what other sessions are told, and the refusals."""

from __future__ import annotations

from tests.mail.imap.imap_rig import Client, ImapRig, imap_rig
from tests.mail.mailstore_rig import MailRig, check_invariants, message

ANN = "ann@example.org"


def tagged(lines: list[bytes]) -> bytes:
    """The tagged line without its tag."""
    return lines[-1].split(b" ", 1)[1]


async def _fill(rig: ImapRig, count: int, mailbox: str = "INBOX") -> None:
    for n in range(count):
        await rig.mail.store.append(rig.users[ANN], mailbox, message(n))


async def _selected(rig: ImapRig, command: str = "SELECT INBOX") -> Client:
    client = await rig.client(login=ANN)
    await client.ok(command)
    return client


async def _uidvalidity(rig: ImapRig, mailbox: str) -> int:
    box = await rig.mail.store.get_mailbox(rig.users[ANN], mailbox)
    return box.uidvalidity


async def test_store(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await _fill(rig, 3)
        client = await _selected(rig)

        lines = await client.ok("STORE 1:2 +FLAGS (\\Flagged Work)")
        assert lines == [
            b"* 1 FETCH (FLAGS (\\Flagged Work))\r\n",
            b"* 2 FETCH (FLAGS (\\Flagged Work))\r\n",
            b"t3 OK STORE completed\r\n",
        ]
        # Only the messages whose flags change get a line.
        lines = await client.ok("STORE 1:3 +FLAGS \\Flagged")
        assert lines[:-1] == [b"* 3 FETCH (FLAGS (\\Flagged))\r\n"]
        lines = await client.ok("STORE 2 -FLAGS (work \\Flagged)")
        assert lines[:-1] == [b"* 2 FETCH (FLAGS ())\r\n"]
        lines = await client.ok("STORE 1 FLAGS (\\Seen $Junk)")
        assert lines[:-1] == [b"* 1 FETCH (FLAGS (\\Seen $Junk))\r\n"]
        assert await client.ok("STORE 1 FLAGS (\\Seen $junk)") == [
            b"t7 OK STORE completed\r\n"  # keywords match in any case
        ]
        assert await client.ok("STORE 1:3 +FLAGS.SILENT (\\Answered)") == [
            b"t8 OK STORE completed\r\n"
        ]
        lines = await client.ok("UID STORE 2:* -FLAGS (\\Answered)")
        assert lines == [
            b"* 2 FETCH (UID 2 FLAGS ())\r\n",
            b"* 3 FETCH (UID 3 FLAGS (\\Flagged))\r\n",
            b"t9 OK UID STORE completed\r\n",
        ]
        lines = await client.ok("FETCH 1:3 FLAGS")
        assert lines[:-1] == [
            b"* 1 FETCH (FLAGS (\\Answered \\Seen $Junk))\r\n",
            b"* 2 FETCH (FLAGS ())\r\n",
            b"* 3 FETCH (FLAGS (\\Flagged))\r\n",
        ]


async def test_store_is_told_to_other_sessions_once(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await _fill(rig, 2)
        client = await _selected(rig)
        other = await _selected(rig)

        await client.ok("STORE 2 +FLAGS (\\Seen)")
        assert await client.ok("NOOP") == [b"t4 OK completed\r\n"]
        lines = await other.ok("NOOP")
        assert lines == [
            b"* 2 FETCH (UID 2 FLAGS (\\Seen))\r\n",
            b"t3 OK completed\r\n",
        ]


async def test_store_refusals(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await _fill(rig, 1)
        client = await _selected(rig)

        # \Recent is the server's (RFC 3501 §2.3.2); reserved names are BAD.
        for flags in ("(\\Recent)", "(\\Seen \\Bogus)", "(a]b)"):
            lines = await client.command(f"STORE 1 +FLAGS {flags}")
            assert tagged(lines).startswith(b"BAD "), flags
        lines = await client.command("STORE 2 +FLAGS (\\Seen)")
        assert tagged(lines).startswith(b"BAD ")
        lines = await client.command("STORE 1 (UNCHANGEDSINCE 5) +FLAGS (\\Seen)")
        assert tagged(lines).startswith(b"BAD ")  # CONDSTORE is not offered

        await client.ok("EXAMINE INBOX")
        lines = await client.command("STORE 1 +FLAGS (\\Seen)")
        assert tagged(lines) == b"NO [READ-ONLY] The mailbox is selected read-only\r\n"
        lines = await client.ok("FETCH 1 FLAGS")
        assert lines[0] == b"* 1 FETCH (FLAGS ())\r\n"


async def test_store_on_a_message_expunged_elsewhere(mail: MailRig) -> None:
    """RFC 2180 §4.2, RFC 5530: the others change, NO [EXPUNGEISSUED], no
    EXPUNGE during STORE (RFC 3501 §7.4.1); UID STORE ignores the UID."""
    async with imap_rig(mail) as rig:
        await _fill(rig, 3)
        client = await _selected(rig)
        other = await _selected(rig)
        await other.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        await other.ok("EXPUNGE")

        lines = await client.command("STORE 1:3 +FLAGS (\\Seen)")
        assert lines == [
            b"* 1 FETCH (FLAGS (\\Seen))\r\n",
            b"* 3 FETCH (FLAGS (\\Seen))\r\n",
            b"t3 NO [EXPUNGEISSUED] Some messages were expunged\r\n",
        ]
        lines = await client.command("STORE 2 +FLAGS.SILENT (\\Seen)")
        assert lines == [b"t4 NO [EXPUNGEISSUED] Some messages were expunged\r\n"]
        lines = await client.ok("UID STORE 1:3 +FLAGS (\\Flagged)")
        assert lines == [
            b"* 1 FETCH (UID 1 FLAGS (\\Flagged \\Seen))\r\n",
            b"* 3 FETCH (UID 3 FLAGS (\\Flagged \\Seen))\r\n",
            b"* 2 EXPUNGE\r\n",
            b"t5 OK UID STORE completed\r\n",
        ]
        lines = await client.ok("STORE 2 -FLAGS (\\Flagged)")
        assert lines[0] == b"* 2 FETCH (FLAGS (\\Seen))\r\n"


async def test_copy(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await _fill(rig, 4)
        await rig.mail.store.create_mailbox(rig.users[ANN], "Projects")
        projects = await _uidvalidity(rig, "Projects")
        client = await _selected(rig)
        await client.ok("STORE 2 +FLAGS.SILENT (\\Flagged $Forwarded)")

        raw = message(99)
        lines = await client.ok(b"APPEND Projects {%d+}\r\n%s" % (len(raw), raw))
        assert tagged(lines) == b"OK [APPENDUID %d 1] APPEND completed\r\n" % projects
        lines = await client.ok("COPY 2:3 Projects")
        assert lines == [
            b"t5 OK [COPYUID %d 2:3 2:3] COPY completed\r\n" % projects,
        ]
        lines = await client.ok("UID COPY 4,1,9 Projects")
        assert tagged(lines) == b"OK [COPYUID %d 1,4 4:5] UID COPY completed\r\n" % (
            projects
        )
        lines = await client.ok("UID COPY 7:8 Projects")  # nothing named
        assert tagged(lines) == b"OK UID COPY completed\r\n"

        # Flags and the internal date are kept; the source is untouched.
        lines = await client.ok("FETCH 1:* (UID FLAGS)")
        assert len(lines) == 5
        await client.ok("EXAMINE Projects")
        lines = await client.ok(
            "FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])"
        )
        subjects = [
            line.split(b"Subject: ")[1].split(b"\r\n")[0] for line in lines[:-1]
        ]
        assert subjects == [b"hello 99", b"hello 1", b"hello 2", b"hello 0", b"hello 3"]
        assert lines[1].startswith(b"* 2 FETCH (UID 2 FLAGS (\\Flagged $Forwarded) ")
        await check_invariants(rig.mail)


async def test_copy_refusals_and_into_the_selected_mailbox(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await _fill(rig, 2)
        inbox = await _uidvalidity(rig, "INBOX")
        client = await _selected(rig)

        lines = await client.command("COPY 1 Nowhere")
        assert tagged(lines) == b"NO [TRYCREATE] no such mailbox\r\n"
        lines = await client.command("COPY 3 Projects")
        assert tagged(lines).startswith(b"BAD ")

        # A copy into the selected mailbox is a new message: EXISTS now.
        lines = await client.ok("COPY 1:2 INBOX")
        assert lines == [
            b"* 4 EXISTS\r\n",
            b"t5 OK [COPYUID %d 1:2 3:4] COPY completed\r\n" % inbox,
        ]

        # COPY needs no write access to the source.
        await rig.mail.store.create_mailbox(rig.users[ANN], "Projects")
        await client.ok("EXAMINE INBOX")
        lines = await client.ok("COPY 4 Projects")
        assert tagged(lines).startswith(b"OK [COPYUID ")


async def test_move(mail: MailRig) -> None:
    """RFC 6851 §3.3, §4.3: COPYUID untagged, EXPUNGE per message, flags
    kept in the destination; other sessions hear the EXPUNGE."""
    async with imap_rig(mail) as rig:
        await _fill(rig, 5)
        await rig.mail.store.create_mailbox(rig.users[ANN], "Projects")
        projects = await _uidvalidity(rig, "Projects")
        client = await _selected(rig)
        other = await _selected(rig)
        await client.ok("STORE 2 +FLAGS.SILENT (\\Seen Work)")

        lines = await client.ok("MOVE 2,4 Projects")
        assert lines == [
            b"* OK [COPYUID %d 2,4 1:2] Moved\r\n" % projects,
            b"* 4 EXPUNGE\r\n",
            b"* 2 EXPUNGE\r\n",
            b"t4 OK MOVE completed\r\n",
        ]
        lines = await client.ok("UID MOVE 5:* Projects")  # UID 5 is message 3
        assert lines == [
            b"* OK [COPYUID %d 5 3] Moved\r\n" % projects,
            b"* 3 EXPUNGE\r\n",
            b"t5 OK UID MOVE completed\r\n",
        ]
        lines = await client.ok("FETCH 1:* UID")
        assert lines[:-1] == [b"* 1 FETCH (UID 1)\r\n", b"* 2 FETCH (UID 3)\r\n"]

        lines = await other.ok("NOOP")
        assert lines == [
            b"* 5 EXPUNGE\r\n",
            b"* 4 EXPUNGE\r\n",
            b"* 2 EXPUNGE\r\n",
            b"t3 OK completed\r\n",
        ]
        await other.ok("SELECT Projects")
        lines = await other.ok(
            "FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])"
        )
        assert [line.split(b" BODY[")[0] for line in lines[:-1]] == [
            b"* 1 FETCH (UID 1 FLAGS (\\Seen Work)",
            b"* 2 FETCH (UID 2 FLAGS ()",
            b"* 3 FETCH (UID 3 FLAGS ()",
        ]
        assert b"hello 1\r\n" in lines[0] and b"hello 4\r\n" in lines[2]
        await check_invariants(rig.mail)


async def test_move_refusals_and_within_a_mailbox(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await _fill(rig, 2)
        inbox = await _uidvalidity(rig, "INBOX")
        client = await _selected(rig)

        lines = await client.command("MOVE 1 Nowhere")
        assert tagged(lines) == b"NO [TRYCREATE] no such mailbox\r\n"
        lines = await client.ok("UID MOVE 8 INBOX")
        assert lines == [b"t4 OK UID MOVE completed\r\n"]

        # Moved within the mailbox: a new UID at the end.
        lines = await client.ok("MOVE 1 INBOX")
        assert lines == [
            b"* OK [COPYUID %d 1 3] Moved\r\n" % inbox,
            b"* 1 EXPUNGE\r\n",
            b"* 2 EXISTS\r\n",
            b"t5 OK MOVE completed\r\n",
        ]
        lines = await client.ok("FETCH 1:* UID")
        assert lines[:-1] == [b"* 1 FETCH (UID 2)\r\n", b"* 2 FETCH (UID 3)\r\n"]

        await client.ok("EXAMINE INBOX")
        lines = await client.command("MOVE 1 Trash")
        assert tagged(lines) == b"NO [READ-ONLY] The mailbox is selected read-only\r\n"


async def test_expunge(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await _fill(rig, 6)
        client = await _selected(rig)
        other = await _selected(rig)

        await client.ok("STORE 2,4,5 +FLAGS.SILENT (\\Deleted)")
        lines = await client.ok("UID EXPUNGE 1:4")  # UID 5 is kept
        assert lines == [
            b"* 4 EXPUNGE\r\n",
            b"* 2 EXPUNGE\r\n",
            b"t4 OK UID EXPUNGE completed\r\n",
        ]
        lines = await client.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        lines = await client.ok("EXPUNGE")
        assert lines == [
            b"* 3 EXPUNGE\r\n",
            b"* 1 EXPUNGE\r\n",
            b"t6 OK EXPUNGE completed\r\n",
        ]
        assert await client.ok("EXPUNGE") == [b"t7 OK EXPUNGE completed\r\n"]
        assert await client.ok("NOOP") == [b"t8 OK completed\r\n"]
        lines = await client.ok("FETCH 1:* UID")
        assert lines[:-1] == [b"* 1 FETCH (UID 3)\r\n", b"* 2 FETCH (UID 6)\r\n"]

        # The other session hears every expunge, numbered as it counts.
        lines = await other.ok("NOOP")
        assert lines == [
            b"* 5 EXPUNGE\r\n",
            b"* 4 EXPUNGE\r\n",
            b"* 2 EXPUNGE\r\n",
            b"* 1 EXPUNGE\r\n",
            b"t3 OK completed\r\n",
        ]

        await client.ok("EXAMINE INBOX")
        lines = await client.command("EXPUNGE")
        assert tagged(lines) == b"NO [READ-ONLY] The mailbox is selected read-only\r\n"
        lines = await client.command("UID EXPUNGE 1:*")
        assert tagged(lines) == b"NO [READ-ONLY] The mailbox is selected read-only\r\n"
        await check_invariants(rig.mail)
