"""A live IMAP session fed random commands: every answer is a protocol
answer (never SERVERBUG, never a dropped connection), and the session goes
on. The parser alone is fuzzed with hypothesis in ``test_imap_fuzz``; this
drives the handlers behind it with a seeded generator, a few hundred
commands per seed, on a mailbox with real messages."""

from __future__ import annotations

import random

import pytest

from nubo.mail.imap.session import SessionLimits
from tests.mail.imap.imap_rig import imap_rig
from tests.mail.mailstore_rig import MailRig, message

ANN = "ann@example.org"

COMMANDS = [
    "CAPABILITY", "NOOP", "CHECK", "SELECT", "EXAMINE", "CREATE", "DELETE",
    "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LIST", "LSUB", "STATUS", "EXPUNGE",
    "SEARCH", "FETCH", "STORE", "COPY", "MOVE", "UID FETCH", "UID SEARCH",
    "UID STORE", "UID COPY", "UID MOVE", "UID EXPUNGE", "NAMESPACE",
    "GETQUOTA", "GETQUOTAROOT", "ENABLE", "ID", "UNSELECT", "CLOSE", "LOGIN",
    "FROB",
]  # fmt: skip
ATOMS = [
    "INBOX", "Sent", "Trash", "Work/Sub", "&AOk-t&AOk-", "*", "%", "1", "2:4",
    "1:*", "*:3", "4294967295", "0", "-1", "3,1,2", "\"\"", "NIL", "()",
    "(FLAGS UID)", "(BODY[] RFC822.SIZE)", "BODY.PEEK[1.MIME]<0.10>",
    "(ENVELOPE BODYSTRUCTURE)", "BODY[HEADER.FIELDS (SUBJECT FROM)]",
    "BODY[2.TEXT]", "BODY[TEXT]<5.3>", "ALL", "FAST", "FULL", "UNSEEN",
    "OR SEEN FLAGGED", "NOT (DELETED)", "FROM \"ann\"", "HEADER Subject \"hi\"",
    "SINCE 1-Jan-2020", "BEFORE 31-Dec-2099", "LARGER 100", "SMALLER 5",
    "TEXT \"fox\"", "BODY \"Gr\\\"u\"", "KEYWORD $Junk", "UID 1:*",
    "+FLAGS (\\Seen)", "-FLAGS.SILENT (\\Deleted)", "FLAGS ($Junk Work)",
    "+FLAGS (\\Deleted)", "(MESSAGES UNSEEN UIDNEXT SIZE)", "(UIDVALIDITY)",
    "CHARSET UTF-8", "CHARSET KOI8-R", "RETURN (CHILDREN SPECIAL-USE)",
    "(SUBSCRIBED)", "\"\\\\\"", "(\"name\" \"fuzz\")", "STORAGE", "\\Seen",
]  # fmt: skip


def random_line(rnd: random.Random, tag: str) -> bytes:
    words: list[bytes] = [tag.encode(), rnd.choice(COMMANDS).encode()]
    for _ in range(rnd.randint(0, 4)):
        pick = rnd.random()
        if pick < 0.75:
            words.append(rnd.choice(ATOMS).encode())
        elif pick < 0.85:
            data = bytes(rnd.randint(0x20, 0xFF) for _ in range(rnd.randint(0, 12)))
            words.append(b"{%d+}\r\n%s" % (len(data), data))
        else:
            # Printable junk, with no CR or LF (those end the line).
            junk = bytes(rnd.choice(b'()[]{}<>*%\\"+-.:,~ aZ09\x01\x7f\xc3\xa9'))
            words.append(junk * rnd.randint(1, 3))
    return b" ".join(words) + b"\r\n"


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_commands_get_protocol_answers(mail: MailRig, seed: int) -> None:
    rnd = random.Random(seed)
    # Random commands are mostly malformed: no disconnect for that here.
    async with imap_rig(mail, limits=SessionLimits(max_bad=10**6)) as rig:
        for n in range(6):
            await rig.deliver(ANN, message(n, 300 * n))
        client = await rig.client(login=ANN)
        await client.ok("SELECT INBOX")

        for number in range(150):
            tag = f"f{number}"
            await client.send(random_line(rnd, tag))
            lines = await client.until(tag)
            for line in lines:
                assert line[:2] in (b"* ", b"+ ") or line.startswith(tag.encode())
            status = lines[-1].split(b" ")[1]
            assert status in (b"OK", b"NO", b"BAD"), lines
            assert b"SERVERBUG" not in lines[-1], lines
            if rnd.random() < 0.2:
                await client.ok("SELECT INBOX")

        assert (await client.command("NOOP"))[-1].endswith(b"OK completed\r\n")
