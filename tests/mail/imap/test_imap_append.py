"""Transcripts of APPEND (RFC 3501 §6.3.11): synchronizing and LITERAL+
literals, APPENDUID (RFC 4315), flags and date, the refusals made before
the message is sent (TRYCREATE, OVERQUOTA, bad flags, sign-in) and by the
parser (TOOBIG, RFC 7889), and the news of it in sessions that have the
mailbox selected. Each test runs on both storage pairs."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from nubo.mail.imap.lexer import Limits
from nubo.mail.imap.session import SessionLimits
from tests.mail.imap.imap_rig import PASSWORD, Client, ImapRig, imap_rig
from tests.mail.mailstore_rig import MailRig, message

ANN = "ann@example.org"
CONTINUE = b"+ Ready for literal data\r\n"


async def stored(rig: ImapRig, mailbox: str = "INBOX") -> list[bytes]:
    """The bytes of every message of ann's ``mailbox``, by UID."""
    store = rig.mail.store
    box = await store.get_mailbox(rig.users[ANN], mailbox)
    return [
        await store.read_message(row.blob_id)
        for row in await store.messages(box.id, with_info=False)
    ]


async def appenduid(rig: ImapRig, mailbox: str, uid: int) -> bytes:
    box = await rig.mail.store.get_mailbox(rig.users[ANN], mailbox)
    return b"[APPENDUID %d %d]" % (box.uidvalidity, uid)


async def sync_append(c: Client, head: bytes, body: bytes, tag: str) -> list[bytes]:
    """APPEND with a synchronizing literal: the head, "+", then the octets."""
    await c.send(tag.encode() + b" APPEND " + head + b" {%d}\r\n" % len(body))
    assert await c.line() == CONTINUE
    await c.send(body + b"\r\n")
    return await c.until(tag)


async def test_append_with_a_synchronizing_literal(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        c = await rig.client(login=ANN)
        body = message(1)
        lines = await sync_append(c, b"Drafts", body, "a1")
        code = await appenduid(rig, "Drafts", 1)
        assert lines == [b"a1 OK " + code + b" APPEND completed\r\n"]
        assert await stored(rig, "Drafts") == [body]

        lines = await sync_append(c, b"Drafts", message(2), "a2")
        assert lines == [
            b"a2 OK " + await appenduid(rig, "Drafts", 2) + b" APPEND completed\r\n"
        ]
        assert await c.command("NOOP") == [b"t2 OK completed\r\n"]


async def test_append_with_literal_plus_in_one_write(mail: MailRig) -> None:
    """LITERAL+ (RFC 7888): no "+" is sent; a message of several reads
    (300 KB) arrives byte for byte, CR, LF and NUL included."""
    async with imap_rig(mail) as rig:
        c = await rig.client(login=ANN)
        body = message(1, 300_000) + b"bare\nlf and \x00 nul\r\n"
        await c.send(b"a1 APPEND INBOX {%d+}\r\n%s\r\n" % (len(body), body))
        assert await c.until("a1") == [
            b"a1 OK " + await appenduid(rig, "INBOX", 1) + b" APPEND completed\r\n"
        ]
        assert await stored(rig) == [body]


async def test_append_flags_and_date(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        c = await rig.client(login=ANN)
        body = message(1)
        head = b'INBOX (\\Seen $Forwarded) "05-Mar-2026 10:20:30 +0100"'
        lines = await sync_append(c, head, body, "a1")
        assert lines[-1].startswith(b"a1 OK [APPENDUID ")

        box = await rig.mail.store.get_mailbox(rig.users[ANN], "INBOX")
        (row,) = await rig.mail.store.messages(box.id, with_info=False)
        assert row.flags == {"\\Seen", "$Forwarded"}
        when = datetime.datetime(
            2026,
            3,
            5,
            10,
            20,
            30,
            tzinfo=datetime.timezone(datetime.timedelta(hours=1)),
        )
        assert row.internal_date == when
        # \Recent is a session property: accepted and not stored.
        lines = await sync_append(c, b"INBOX (\\Recent)", message(2), "a2")
        assert lines[-1].startswith(b"a2 OK [APPENDUID ")
        rows = await rig.mail.store.messages(box.id, with_info=False)
        assert rows[1].flags == frozenset()


async def test_trycreate_refuses_before_the_literal(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        c = await rig.client(login=ANN)
        await c.send(b"a1 APPEND Nowhere {20}\r\n")
        assert await c.line() == b"a1 NO [TRYCREATE] no such mailbox\r\n"
        # The literal was not asked for: the next line is a command.
        assert await c.command("NOOP") == [b"t2 OK completed\r\n"]

        await c.ok("CREATE Nowhere")
        lines = await sync_append(c, b"Nowhere", message(1), "a2")
        assert lines[-1].startswith(b"a2 OK [APPENDUID ")


async def test_refused_literal_plus_octets_are_never_commands(mail: MailRig) -> None:
    """A LITERAL+ message comes whatever the answer: its octets, here
    shaped as commands, are read and dropped (``realworld/IMAP-01``)."""
    async with imap_rig(mail) as rig:
        c = await rig.client(login=ANN)
        body = b"x1 CREATE Injected\r\nx2 LOGOUT\r\n"
        await c.send(b"a1 APPEND Nowhere {%d+}\r\n%s\r\n" % (len(body), body))
        assert await c.line() == b"a1 NO [TRYCREATE] no such mailbox\r\n"
        await c.send(b"a2 APPEND INBOX (\\Bogus) {%d+}\r\n%s\r\n" % (len(body), body))
        lines = await c.until("a2")
        assert len(lines) == 1 and lines[0].startswith(b"a2 BAD ")
        assert await c.command("NOOP") == [b"t2 OK completed\r\n"]
        boxes = await rig.mail.store.list_mailboxes(rig.users[ANN])
        assert "Injected" not in {box.name for box in boxes}
        assert await stored(rig) == []


async def test_append_needs_sign_in(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        c = await rig.client()
        await c.send(b"a1 APPEND INBOX {5}\r\n")
        assert await c.line() == b"a1 BAD Sign in first (LOGIN or AUTHENTICATE)\r\n"
        await c.send(b"a2 APPEND INBOX {5+}\r\nx LOG\r\n")
        assert await c.line() == b"a2 BAD Sign in first (LOGIN or AUTHENTICATE)\r\n"
        await c.login()
        assert await stored(rig) == []


async def test_bad_flags_and_empty_messages_are_refused_early(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        c = await rig.client(login=ANN)
        await c.send(b"a1 APPEND INBOX (\\Bogus) {10}\r\n")
        line = await c.line()
        assert line.startswith(b"a1 BAD ") and b"\\Bogus" in line
        await c.send(b"a2 APPEND INBOX {0}\r\n")
        assert await c.line() == b"a2 NO an empty message cannot be stored\r\n"
        assert await c.command("NOOP") == [b"t2 OK completed\r\n"]
        # A date-time with no UTC time: refused, not "store unavailable".
        await c.send(b'a3 APPEND INBOX "01-Jan-0001 00:00:00 +1400" {10}\r\n')
        assert await c.line() == b"+ Ready for literal data\r\n"
        await c.send(b"0123456789\r\n")
        assert await c.line() == b"a3 BAD date-time out of range\r\n"
        assert await stored(rig) == []


async def test_toobig_over_appendlimit(mail: MailRig) -> None:
    """RFC 7889: the parser refuses a message above APPENDLIMIT before it
    is sent (synchronizing) or while dropping it (LITERAL+)."""
    limits = SessionLimits(parser=Limits(max_append=1000))
    async with imap_rig(mail, limits) as rig:
        c = await rig.client()
        lines = await c.login()
        assert b" APPENDLIMIT=1000" in lines[-1]

        await c.send(b"a1 APPEND INBOX {1001}\r\n")
        assert await c.line() == b"a1 NO [TOOBIG] message too large\r\n"
        body = b"y1 CREATE Injected\r\n" * 60
        await c.send(b"a2 APPEND INBOX {%d+}\r\n%s\r\n" % (len(body), body))
        assert await c.line() == b"a2 NO [TOOBIG] message too large\r\n"
        assert await c.command("NOOP") == [b"t2 OK completed\r\n"]

        body = message(1, 1000)[:1000]
        lines = await sync_append(c, b"INBOX", body, "a3")
        assert lines[-1].startswith(b"a3 OK [APPENDUID ")
        assert await stored(rig) == [body]


async def test_overquota(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await rig.accounts.set_quota(ANN, 3000)
        c = await rig.client(login=ANN)
        await c.send(b"a1 APPEND INBOX {3001}\r\n")
        assert await c.line() == (
            b"a1 NO [OVERQUOTA] message larger than the 2.9K quota\r\n"
        )
        first = message(1, 2000)
        lines = await sync_append(c, b"INBOX", first, "a2")
        assert lines[-1].startswith(b"a2 OK [APPENDUID ")

        await c.send(b"a3 APPEND INBOX {1500}\r\n")
        assert await c.line() == b"a3 NO [OVERQUOTA] mailbox full: 2.9K quota\r\n"
        body = message(2, 1500)
        await c.send(b"a4 APPEND INBOX {%d+}\r\n%s\r\n" % (len(body), body))
        assert await c.line() == b"a4 NO [OVERQUOTA] mailbox full: 2.9K quota\r\n"
        assert await c.command("NOOP") == [b"t2 OK completed\r\n"]
        assert await stored(rig) == [first]


async def test_appended_message_is_announced(mail: MailRig) -> None:
    """To the session that appended (EXISTS before the OK) and to another
    session with the mailbox selected (EXISTS on its next NOOP)."""
    async with imap_rig(mail) as rig:
        c = await rig.client(login=ANN)
        other = await rig.client(login=ANN)
        await rig.deliver(ANN, message(1))
        await c.ok("SELECT INBOX")
        await other.ok("EXAMINE INBOX")

        lines = await sync_append(c, b"INBOX", message(2), "a1")
        assert lines == [
            b"* 2 EXISTS\r\n",
            b"a1 OK " + await appenduid(rig, "INBOX", 2) + b" APPEND completed\r\n",
        ]
        assert await other.command("NOOP") == [
            b"* 2 EXISTS\r\n",
            b"t3 OK completed\r\n",
        ]

        # An APPEND elsewhere tells nothing of the selected mailbox.
        lines = await sync_append(c, b"Drafts", message(3), "a2")
        assert lines == [
            b"a2 OK " + await appenduid(rig, "Drafts", 1) + b" APPEND completed\r\n"
        ]
        assert await other.command("NOOP") == [b"t4 OK completed\r\n"]


async def test_a_rejected_end_drops_the_message(mail: MailRig) -> None:
    """MULTIAPPEND is not offered: a second message after the first is
    refused by the parser, and the first is not stored either."""
    async with imap_rig(mail) as rig:
        c = await rig.client(login=ANN)
        await c.send(b"a1 APPEND INBOX {3+}\r\nabc {3+}\r\ndef\r\n")
        assert await c.line() == b"a1 BAD expected the end of APPEND\r\n"
        assert await c.command("NOOP") == [b"t2 OK completed\r\n"]
        assert await stored(rig) == []


async def test_imaplib_creates_appends_and_lists(mail: MailRig) -> None:
    """A real client: Python's imaplib (synchronizing literals, its own
    parsing of LIST, STATUS and the APPENDUID code)."""
    import imaplib

    async with imap_rig(mail) as rig:
        port = rig.port()
        body = message(1)

        def session() -> list[tuple[str, list[Any]]]:
            client = imaplib.IMAP4("127.0.0.1", port)
            client.login(ANN, PASSWORD)
            answers = [
                client.create("Entw&APw-rfe"),
                client.append("Entw&APw-rfe", "(\\Seen)", None, body),
                client.list('""', "Entw*"),
                client.status("Entw&APw-rfe", "(MESSAGES UNSEEN)"),
                client.getquotaroot("Entw&APw-rfe"),
            ]
            client.logout()
            return answers

        created, appended, listed, status, quota = await asyncio.to_thread(session)
        assert created == ("OK", [b"CREATE completed"])
        code = await appenduid(rig, "Entwürfe", 1)
        assert appended == ("OK", [code + b" APPEND completed"])
        assert listed == ("OK", [b'(\\HasNoChildren) "/" Entw&APw-rfe'])
        assert status == ("OK", [b"Entw&APw-rfe (MESSAGES 1 UNSEEN 0)"])
        assert quota[0] == "OK"
        assert quota[1][0] == [b'Entw&APw-rfe ""']
        assert await stored(rig, "Entwürfe") == [body]
