"""SEARCH and UID SEARCH over real sockets (RFC 3501 §6.4.4, §6.4.8): every
key, their combinations, sequence numbers against UIDs after expunges,
ghosts, CHARSET, and the refusals."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tests.mail.imap.imap_rig import Client, ImapRig, imap_rig
from tests.mail.mailstore_rig import MailRig, message

ANN = "ann@example.org"

# Five messages, UIDs 1 to 5, each with something the others lack.
MESSAGES: list[tuple[bytes, tuple[str, ...], datetime]] = [
    (
        b"From: Ann Example <ann@example.net>\r\nTo: bob@example.org\r\n"
        b"Cc: carol@example.org\r\nSubject: Lunch plans\r\n"
        b"Date: Sun, 1 Mar 2026 10:00:00 +0000\r\nX-Tag: alpha\r\n\r\n"
        b"pizza at noon\r\n",
        ("\\Seen",),
        datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    ),
    (
        b"From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <joerg@example.de>\r\n"
        b"To: bob@example.org\r\n"
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n"
        b"Date: Mon, 2 Mar 2026 23:30:00 +0000\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"caf=C3=A9 au lait\r\n",
        ("\\Flagged", "Work"),
        datetime(2026, 3, 2, 23, 59, 59, tzinfo=UTC),
    ),
    (
        b"From: mallory@example.com\r\nTo: bob@example.org\r\n"
        b"Bcc: dave@example.org\r\n"
        b'Subject: say "hi" to C:\\temp 100% _done_\r\n'
        b"Date: Tue, 3 Mar 2026 08:00:00 +0000\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        b"8J+NlSBwYXJ0eQ==\r\n" + b"X" * 6000 + b"\r\n",
        ("\\Answered", "\\Draft"),
        datetime(2026, 3, 3, 0, 0, tzinfo=UTC),
    ),
    (
        b"From: shop@example.com\r\nTo: bob@example.org\r\n"
        b"Subject: offer\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nCafe offer\r\n"
        b"--b\r\nContent-Type: text/html\r\n\r\n"
        b"<p>Caf&eacute; <b>cr&egrave;me</b></p>\r\n--b--\r\n",
        ("\\Deleted",),
        datetime(2026, 3, 4, 9, 0, tzinfo=UTC),
    ),
    (
        b"From: Bob <bob@example.org>\r\nTo: ann@example.net\r\n"
        b"Subject: Re: Lunch plans\r\nDate: Thu, 5 Mar 2026 12:00:00 +0000\r\n"
        b"\r\nyes, the quick brown fox\r\n",
        (),
        datetime(2026, 3, 5, 12, 0, tzinfo=UTC),
    ),
]


async def _fill(rig: ImapRig) -> None:
    for raw, flags, when in MESSAGES:
        await rig.mail.store.append(
            rig.users[ANN], "INBOX", raw, flags=flags, internal_date=when
        )


async def found(client: Client, query: str | bytes) -> list[int]:
    """The numbers of the one ``* SEARCH`` line of a command that must
    succeed."""
    lines = await client.ok(query)
    hits = [line for line in lines if line.startswith(b"* SEARCH")]
    assert len(hits) == 1, lines
    return [int(n) for n in hits[0].split()[2:]]


async def _selected(rig: ImapRig) -> Client:
    client = await rig.client(login=ANN)
    await client.ok("SELECT INBOX")
    return client


async def test_every_key(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await _fill(rig)
        client = await _selected(rig)
        expected = {
            "ALL": [1, 2, 3, 4, 5],
            "ANSWERED": [3],
            "UNANSWERED": [1, 2, 4, 5],
            "DELETED": [4],
            "UNDELETED": [1, 2, 3, 5],
            "DRAFT": [3],
            "UNDRAFT": [1, 2, 4, 5],
            "FLAGGED": [2],
            "UNFLAGGED": [1, 3, 4, 5],
            "SEEN": [1],
            "UNSEEN": [2, 3, 4, 5],
            "KEYWORD work": [2],
            "KEYWORD WORK": [2],
            "UNKEYWORD Work": [1, 3, 4, 5],
            "KEYWORD $Junk": [],
            # nubo keeps no \Recent: nothing is recent or new, all is old.
            "RECENT": [],
            "NEW": [],
            "OLD": [1, 2, 3, 4, 5],
            "FROM ann": [1],
            "FROM example.com": [3, 4],
            'FROM "Jörg Müller"': [2],
            "TO ann@example.net": [5],
            "CC carol": [1],
            "BCC dave": [3],
            "SUBJECT lunch": [1, 5],
            'SUBJECT "KÖLN"': [2],  # any case, not only ASCII
            'SUBJECT "köln"': [2],
            'SUBJECT "\\"hi\\""': [3],
            'SUBJECT "C:\\\\temp"': [3],
            'SUBJECT "%"': [3],
            "SUBJECT _": [3],
            'HEADER X-Tag "ALPHA"': [1],
            'HEADER x-tag ""': [1],
            'HEADER Content-Transfer-Encoding ""': [2, 3],
            'HEADER Subject ""': [1, 2, 3, 4, 5],
            "HEADER Message-ID x": [],
            "BODY pizza": [1],
            "BODY lunch": [],  # in the header only
            "TEXT lunch": [1, 5],
            'BODY "café"': [2, 4],  # quoted-printable, and an HTML entity
            'BODY "crème"': [4],
            'BODY "<b>"': [],
            'BODY "🍕"': [3],  # base64
            "BODY FOX": [5],
            "BEFORE 2-Mar-2026": [1],
            "ON 2-Mar-2026": [2],
            "SINCE 3-Mar-2026": [3, 4, 5],
            'ON "3-Mar-2026"': [3],
            "SENTBEFORE 2-Mar-2026": [1],
            "SENTON 2-Mar-2026": [2],
            "SENTSINCE 3-Mar-2026": [3, 5],  # 4 has no Date
            "NOT SENTSINCE 3-Mar-2026": [1, 2, 4],
            "LARGER 5000": [3],
            "SMALLER 200": [1, 5],
            "LARGER 172": [2, 3, 4],  # strictly larger: 1 is 172 octets
            "SMALLER 172": [5],
            "2": [2],
            "2:4": [2, 3, 4],
            "4:2": [2, 3, 4],
            "1,3,5": [1, 3, 5],
            "*": [5],
            "UID 2:3": [2, 3],
            "UID 4:*": [4, 5],
            "UID 9:*": [5],  # "*" is the last UID: 9:* is 5:9
            "UID 6:8": [],
        }
        for query, numbers in expected.items():
            assert await found(client, f"SEARCH {query}") == numbers, query


async def test_combinations(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await _fill(rig)
        client = await _selected(rig)
        expected = {
            "SEEN FLAGGED": [],
            "OR SEEN FLAGGED": [1, 2],
            "NOT SEEN": [2, 3, 4, 5],
            "NOT NOT SEEN": [1],
            "(SEEN)": [1],
            "(UNSEEN SUBJECT lunch)": [5],
            "OR (FROM ann SEEN) (NOT SUBJECT lunch)": [1, 2, 3, 4],
            "OR OR SEEN FLAGGED DELETED": [1, 2, 4],
            "NOT (OR SEEN FLAGGED)": [3, 4, 5],
            "NOT BODY pizza": [2, 3, 4, 5],
            "NOT HEADER X-Tag alpha": [2, 3, 4, 5],
            "OR BODY fox HEADER X-Tag alpha": [1, 5],
            "UNDELETED NOT TEXT lunch": [2, 3],
            "2:5 NOT 3 UNSEEN": [2, 4, 5],
            "OR 1 UID 5": [1, 5],
            "OR 1 UID 5 SINCE 2-Mar-2026": [5],
            "OR 1 UID 5 SINCE 1-Jan-2027": [],
            "ALL ALL (ALL (ALL))": [1, 2, 3, 4, 5],
        }
        for query, numbers in expected.items():
            assert await found(client, f"SEARCH {query}") == numbers, query
            uids = await found(client, f"UID SEARCH {query}")
            assert uids == numbers, query  # UIDs equal numbers before expunges


async def test_numbers_and_uids_after_an_expunge(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await _fill(rig)
        box = await mail.store.get_mailbox(rig.users[ANN], "INBOX")
        client = await _selected(rig)
        await mail.store.store_flags(box.id, [2], "add", ["\\Deleted"])
        await mail.store.expunge(box.id)  # UIDs 2 and 4 go
        lines = await client.ok("NOOP")
        assert b"* 4 EXPUNGE\r\n" in lines and b"* 2 EXPUNGE\r\n" in lines

        assert await found(client, "SEARCH ALL") == [1, 2, 3]
        assert await found(client, "UID SEARCH ALL") == [1, 3, 5]
        assert await found(client, "SEARCH 2:3") == [2, 3]
        assert await found(client, "UID SEARCH 2:3") == [3, 5]  # numbers
        assert await found(client, "UID SEARCH UID 2:4") == [3]
        assert await found(client, "SEARCH UID 2:4") == [2]
        assert await found(client, "SEARCH UID 1:*") == [1, 2, 3]
        assert await found(client, "SEARCH UNSEEN") == [2, 3]
        assert await found(client, "UID SEARCH UNSEEN") == [3, 5]
        assert await found(client, "SEARCH *") == [3]
        assert await found(client, "UID SEARCH *") == [5]
        lines = await client.command("SEARCH 4")
        assert lines[-1].startswith(b"t") and b" BAD " in lines[-1]


async def test_expunged_elsewhere_is_never_matched(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await _fill(rig)
        box = await mail.store.get_mailbox(rig.users[ANN], "INBOX")
        client = await _selected(rig)
        await mail.store.expunge(box.id)  # UID 4 (\Deleted), unannounced

        # SEARCH keeps the numbers the client knows and sends no EXPUNGE
        # (RFC 3501 §7.4.1): message 4 is a ghost, never a match.
        lines = await client.ok("SEARCH ALL")
        assert lines[0] == b"* SEARCH 1 2 3 5\r\n"
        assert not any(b"EXPUNGE" in line for line in lines)
        lines = await client.ok("SEARCH 4:5")
        assert lines[0] == b"* SEARCH 5\r\n"
        assert not any(b"EXPUNGE" in line for line in lines)

        # UID SEARCH may tell of the expunge, after its answer.
        lines = await client.ok("UID SEARCH ALL")
        assert lines[0] == b"* SEARCH 1 2 3 5\r\n"
        assert lines[1] == b"* 4 EXPUNGE\r\n"
        assert await found(client, "SEARCH ALL") == [1, 2, 3, 4]


async def test_messages_not_yet_announced_are_not_answered(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await _fill(rig)
        client = await _selected(rig)
        await rig.deliver(ANN, message(6, subject="Lunch"))

        lines = await client.ok("UID SEARCH SUBJECT lunch")
        assert lines[0] == b"* SEARCH 1 5\r\n"
        assert b"* 6 EXISTS\r\n" in lines[1:]
        assert await found(client, "SEARCH SUBJECT lunch") == [1, 5, 6]


async def test_charsets(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await _fill(rig)
        client = await _selected(rig)
        subject = "grüße".encode()
        literal = b"{%d+}\r\n%s" % (len(subject), subject)
        assert await found(client, b"SEARCH CHARSET UTF-8 SUBJECT " + literal) == [2]
        assert await found(client, b"SEARCH CHARSET utf-8 SUBJECT " + literal) == [2]
        assert await found(client, "SEARCH CHARSET US-ASCII SUBJECT lunch") == [1, 5]
        assert await found(client, b'UID SEARCH FROM "J\xc3\xb6rg"') == [2]

        lines = await client.command("SEARCH CHARSET KOI8-R SUBJECT x")
        assert len(lines) == 1
        assert lines[0].split(b" ", 1)[1] == (
            b"NO [BADCHARSET (US-ASCII UTF-8)] unsupported charset\r\n"
        )
        lines = await client.command(b'SEARCH SUBJECT "caf\xe9"')  # not UTF-8
        assert b" BAD " in lines[-1]


async def test_refusals(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        await _fill(rig)
        client = await rig.client(login=ANN)
        lines = await client.command("SEARCH ALL")
        assert re.match(rb"t\d+ BAD .*SELECT", lines[-1]), lines

        await client.ok("EXAMINE INBOX")
        assert await found(client, "SEARCH SEEN") == [1]  # read-only is fine
        for query in (
            "SEARCH",
            "SEARCH NOSUCHKEY",
            "SEARCH SINCE 31-Feb-2026",
            "SEARCH LARGER x",
            "SEARCH (SEEN",
            "SEARCH OR SEEN",
            "SEARCH 6",
            "SEARCH 0",
            "SEARCH MODSEQ 5",  # no CONDSTORE
        ):
            lines = await client.command(query)
            assert len(lines) == 1 and b" BAD " in lines[0], (query, lines)
        assert await found(client, "SEARCH SEEN") == [1]  # the session goes on


async def test_an_empty_mailbox(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        client = await _selected(rig)
        assert await found(client, "SEARCH ALL") == []
        assert await found(client, "UID SEARCH UID 1:*") == []
        assert await found(client, "UID SEARCH UNSEEN") == []
        # "*" names no message here, but a search for it finds nothing
        # rather than failing, as Dovecot answers; FETCH of it stays BAD.
        assert await found(client, "SEARCH 1:*") == []
        assert await found(client, "UID SEARCH *") == []
        lines = await client.command("FETCH 1:* (FLAGS)")
        assert b" BAD " in lines[-1]


async def test_a_search_of_a_thousand_keys(mail: MailRig) -> None:
    """More keys than one SQL statement holds still get the right answer."""
    async with imap_rig(mail) as rig:
        await _fill(rig)
        client = await _selected(rig)
        query = "SEARCH " + "UNDELETED " * 1500 + "OR " * 90 + "SEEN " * 91
        assert await found(client, query.strip()) == [1]
