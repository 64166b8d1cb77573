"""Transcripts of the mailbox commands: CREATE, DELETE, RENAME, SUBSCRIBE,
UNSUBSCRIBE, LIST (with LIST-EXTENDED, SPECIAL-USE, LIST-STATUS), LSUB,
STATUS and NAMESPACE, each on both storage pairs.

Every user starts with INBOX, Archive, Drafts, Junk, Sent and Trash, all
subscribed (``Mailstore.ensure_mailboxes``)."""

from __future__ import annotations

from nubo.mail.imap.session import SessionLimits
from nubo.mail.imap.wildcard import Pattern
from tests.mail.imap.imap_rig import ImapRig, imap_rig
from tests.mail.mailstore_rig import MailRig, message

ANN = "ann@example.org"

DEFAULT_LIST = [
    b'* LIST (\\HasNoChildren) "/" INBOX\r\n',
    b'* LIST (\\HasNoChildren \\Archive) "/" Archive\r\n',
    b'* LIST (\\HasNoChildren \\Drafts) "/" Drafts\r\n',
    b'* LIST (\\HasNoChildren \\Junk) "/" Junk\r\n',
    b'* LIST (\\HasNoChildren \\Sent) "/" Sent\r\n',
    b'* LIST (\\HasNoChildren \\Trash) "/" Trash\r\n',
]


async def names(rig: ImapRig, user: str = ANN) -> list[str]:
    boxes = await rig.mail.store.list_mailboxes(rig.users[user])
    return [box.name for box in boxes]


# -- LIST ---------------------------------------------------------------------


async def test_list_everything_and_the_root(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        c = await rig.client(login=ANN)
        assert await c.command('LIST "" "*"') == [
            *DEFAULT_LIST,
            b"t2 OK LIST completed\r\n",
        ]
        assert await c.command('LIST "" ""') == [
            b'* LIST (\\Noselect) "/" ""\r\n',
            b"t3 OK LIST completed\r\n",
        ]
        # RFC 3501 §6.3.8: the root of a reference is its first level.
        assert await c.command('LIST "Work/Projects" ""') == [
            b'* LIST (\\Noselect) "/" Work/\r\n',
            b"t4 OK LIST completed\r\n",
        ]
        assert await c.command("NAMESPACE") == [
            b'* NAMESPACE (("" "/")) NIL NIL\r\n',
            b"t5 OK NAMESPACE completed\r\n",
        ]


async def test_list_wildcards_levels_and_reference(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        c = await rig.client(login=ANN)
        assert await c.command("CREATE Work/Projects/2026") == [
            b"t2 OK CREATE completed\r\n"
        ]
        await c.ok("CREATE INBOX/Receipts")

        assert await c.command('LIST "" "%"') == [
            b'* LIST (\\HasChildren) "/" INBOX\r\n',
            *DEFAULT_LIST[1:],
            b'* LIST (\\HasChildren) "/" Work\r\n',
            b"t4 OK LIST completed\r\n",
        ]
        assert await c.command('LIST "" "Work/%"') == [
            b'* LIST (\\HasChildren) "/" Work/Projects\r\n',
            b"t5 OK LIST completed\r\n",
        ]
        assert await c.command('LIST "" "Work/*"') == [
            b'* LIST (\\HasChildren) "/" Work/Projects\r\n',
            b'* LIST (\\HasNoChildren) "/" Work/Projects/2026\r\n',
            b"t6 OK LIST completed\r\n",
        ]
        # The reference is prefixed to the pattern.
        assert await c.command('LIST "Work/" "%"') == [
            b'* LIST (\\HasChildren) "/" Work/Projects\r\n',
            b"t7 OK LIST completed\r\n",
        ]
        assert await c.command('LIST Work "%"') == [
            b'* LIST (\\HasChildren) "/" Work\r\n',
            b"t8 OK LIST completed\r\n",
        ]
        assert await c.command('LIST "" "*/2026"') == [
            b'* LIST (\\HasNoChildren) "/" Work/Projects/2026\r\n',
            b"t9 OK LIST completed\r\n",
        ]
        assert await c.command('LIST "" "%/2026"') == [b"t10 OK LIST completed\r\n"]
        assert await c.command('LIST "" "%/%/%"') == [
            b'* LIST (\\HasNoChildren) "/" Work/Projects/2026\r\n',
            b"t11 OK LIST completed\r\n",
        ]
        # Without wildcards a name matches itself only, case and all.
        assert await c.command('LIST "" "work"') == [b"t12 OK LIST completed\r\n"]


async def test_list_matches_inbox_in_any_case(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        c = await rig.client(login=ANN)
        await c.ok("CREATE inbox/Receipts")
        await c.ok("CREATE Inboxes")
        assert await names(rig) == [
            "INBOX",
            "Archive",
            "Drafts",
            "INBOX/Receipts",
            "Inboxes",
            "Junk",
            "Sent",
            "Trash",
        ]
        assert await c.command('LIST "" "inbox"') == [
            b'* LIST (\\HasChildren) "/" INBOX\r\n',
            b"t4 OK LIST completed\r\n",
        ]
        assert await c.command('LIST "" "In%"') == [
            b'* LIST (\\HasChildren) "/" INBOX\r\n',
            b'* LIST (\\HasNoChildren) "/" Inboxes\r\n',
            b"t5 OK LIST completed\r\n",
        ]
        assert await c.command('LIST "" "inbox/%"') == [
            b'* LIST (\\HasNoChildren) "/" INBOX/Receipts\r\n',
            b"t6 OK LIST completed\r\n",
        ]
        # Only INBOX is case-insensitive: "inboxes" is not "Inboxes".
        assert await c.command('LIST "" "inboxes"') == [b"t7 OK LIST completed\r\n"]


async def test_utf7_names_in_and_out(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        c = await rig.client(login=ANN)
        assert await c.command("CREATE Entw&APw-rfe/R&AOk-sum&AOk-") == [
            b"t2 OK CREATE completed\r\n"
        ]
        assert "Entwürfe/Résumé" in await names(rig)
        assert await c.command('LIST "" "Entw%"') == [
            b'* LIST (\\HasChildren) "/" Entw&APw-rfe\r\n',
            b"t3 OK LIST completed\r\n",
        ]
        assert await c.command('LIST "" "*&AOk-"') == [
            b'* LIST (\\HasNoChildren) "/" Entw&APw-rfe/R&AOk-sum&AOk-\r\n',
            b"t4 OK LIST completed\r\n",
        ]
        await c.ok("CREATE A&-B")
        assert "A&B" in await names(rig)
        assert await c.command('LIST "" "A&-*"') == [
            b'* LIST (\\HasNoChildren) "/" A&-B\r\n',
            b"t6 OK LIST completed\r\n",
        ]
        # Not strict modified UTF-7: refused before the store sees it.
        lines = await c.command("CREATE &AGE-")
        assert lines[-1].startswith(b"t7 BAD ")
        lines = await c.command("CREATE Entw\xc3\xbcrfe".encode())
        assert lines[-1].startswith(b"t8 BAD ")


async def test_list_extended_selection_and_return_options(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        c = await rig.client(login=ANN)
        await c.ok("CREATE Work/Projects")
        await c.ok("UNSUBSCRIBE Work")
        await c.ok("UNSUBSCRIBE Junk")

        assert await c.command('LIST (SUBSCRIBED) "" "*"') == [
            b'* LIST (\\Subscribed \\HasNoChildren) "/" INBOX\r\n',
            b'* LIST (\\Subscribed \\HasNoChildren \\Archive) "/" Archive\r\n',
            b'* LIST (\\Subscribed \\HasNoChildren \\Drafts) "/" Drafts\r\n',
            b'* LIST (\\Subscribed \\HasNoChildren \\Sent) "/" Sent\r\n',
            b'* LIST (\\Subscribed \\HasNoChildren \\Trash) "/" Trash\r\n',
            b'* LIST (\\Subscribed \\HasNoChildren) "/" Work/Projects\r\n',
            b"t5 OK LIST completed\r\n",
        ]
        # RFC 5258 §3.5: Work is listed for its subscribed child.
        assert await c.command('LIST (SUBSCRIBED RECURSIVEMATCH) "" "W%"') == [
            b'* LIST (\\HasChildren) "/" Work (CHILDINFO ("SUBSCRIBED"))\r\n',
            b"t6 OK LIST completed\r\n",
        ]
        assert await c.command('LIST (SUBSCRIBED) "" "W%"') == [
            b"t7 OK LIST completed\r\n"
        ]
        # With "*" the child matches itself, so Work is not listed for it.
        assert await c.command('LIST (SUBSCRIBED RECURSIVEMATCH) "" "W*"') == [
            b'* LIST (\\Subscribed \\HasNoChildren) "/" Work/Projects\r\n',
            b"t8 OK LIST completed\r\n",
        ]
        assert await c.command('LIST "" "W*" RETURN (SUBSCRIBED CHILDREN)') == [
            b'* LIST (\\HasChildren) "/" Work\r\n',
            b'* LIST (\\Subscribed \\HasNoChildren) "/" Work/Projects\r\n',
            b"t9 OK LIST completed\r\n",
        ]
        # RFC 6154 §3: only mailboxes with a special use.
        assert await c.command('LIST (SPECIAL-USE) "" "*" RETURN (SPECIAL-USE)') == [
            *DEFAULT_LIST[1:],
            b"t10 OK LIST completed\r\n",
        ]
        # Several patterns (RFC 5258 §3): each mailbox once, in order.
        assert await c.command('LIST "" (Sent INBOX "S*")') == [
            DEFAULT_LIST[0],
            DEFAULT_LIST[4],
            b"t11 OK LIST completed\r\n",
        ]
        assert await c.command('LIST (REMOTE) "" "Junk"') == [
            DEFAULT_LIST[3],
            b"t12 OK LIST completed\r\n",
        ]
        lines = await c.command('LIST (RECURSIVEMATCH) "" "*"')
        assert lines[-1].startswith(b"t13 BAD ")
        lines = await c.command('LIST (FANCY) "" "*"')
        assert lines[-1].startswith(b"t14 BAD ")


async def test_list_status(mail: MailRig) -> None:
    """RFC 5819: a STATUS line after the LIST line of each mailbox."""
    async with imap_rig(mail) as rig:
        first = message(1)
        await rig.deliver(ANN, first)
        await rig.mail.store.append(
            rig.users[ANN], "Sent", message(2), flags=["\\Seen"]
        )
        c = await rig.client(login=ANN)
        lines = await c.command(
            'LIST "" (INBOX Sent) RETURN (STATUS (MESSAGES UNSEEN SIZE))'
        )
        assert lines == [
            DEFAULT_LIST[0],
            b"* STATUS INBOX (MESSAGES 1 UNSEEN 1 SIZE %d)\r\n" % len(first),
            DEFAULT_LIST[4],
            b"* STATUS Sent (MESSAGES 1 UNSEEN 0 SIZE %d)\r\n" % len(message(2)),
            b"t2 OK LIST completed\r\n",
        ]
        # Only mailboxes that meet the selection get a STATUS.
        await c.ok("CREATE Work/Projects")
        await c.ok("UNSUBSCRIBE Work")
        lines = await c.command(
            'LIST (SUBSCRIBED RECURSIVEMATCH) "" "W%" RETURN (STATUS (MESSAGES))'
        )
        assert lines == [
            b'* LIST (\\HasChildren) "/" Work (CHILDINFO ("SUBSCRIBED"))\r\n',
            b"t5 OK LIST completed\r\n",
        ]


# -- LSUB, SUBSCRIBE, UNSUBSCRIBE ---------------------------------------------


async def test_subscriptions_and_lsub(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        c = await rig.client(login=ANN)
        await c.ok("CREATE Work/Projects")
        assert await c.command("UNSUBSCRIBE Work") == [
            b"t3 OK UNSUBSCRIBE completed\r\n"
        ]
        assert await c.command("UNSUBSCRIBE Junk") == [
            b"t4 OK UNSUBSCRIBE completed\r\n"
        ]
        assert await c.command('LSUB "" "*"') == [
            b'* LSUB () "/" INBOX\r\n',
            b'* LSUB () "/" Archive\r\n',
            b'* LSUB () "/" Drafts\r\n',
            b'* LSUB () "/" Sent\r\n',
            b'* LSUB () "/" Trash\r\n',
            b'* LSUB () "/" Work/Projects\r\n',
            b"t5 OK LSUB completed\r\n",
        ]
        # RFC 3501 §6.3.9: with "%" the unsubscribed superior is \Noselect.
        assert await c.command('LSUB "" "W%"') == [
            b'* LSUB (\\Noselect) "/" Work\r\n',
            b"t6 OK LSUB completed\r\n",
        ]
        assert await c.command('LSUB "Work/" "%"') == [
            b'* LSUB () "/" Work/Projects\r\n',
            b"t7 OK LSUB completed\r\n",
        ]
        assert await c.command("SUBSCRIBE Junk") == [b"t8 OK SUBSCRIBE completed\r\n"]
        assert await c.command('LSUB "" "J*"') == [
            b'* LSUB () "/" Junk\r\n',
            b"t9 OK LSUB completed\r\n",
        ]
        assert await c.command("SUBSCRIBE Nowhere") == [
            b"t10 NO [NONEXISTENT] no such mailbox\r\n"
        ]
        assert await c.command("UNSUBSCRIBE Nowhere") == [
            b"t11 NO [NONEXISTENT] no such mailbox\r\n"
        ]


# -- CREATE, DELETE, RENAME -----------------------------------------------------


async def test_create_refusals_and_trailing_delimiter(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        c = await rig.client(login=ANN)
        assert await c.command("CREATE Notes/") == [b"t2 OK CREATE completed\r\n"]
        assert "Notes" in await names(rig)
        assert await c.command("CREATE Notes") == [
            b"t3 NO [ALREADYEXISTS] mailbox already exists\r\n"
        ]
        assert await c.command("CREATE inbox") == [
            b"t4 NO [ALREADYEXISTS] INBOX always exists\r\n"
        ]
        assert await c.command("CREATE a//b") == [
            b't5 NO [CANNOT] empty level in mailbox name (check the "/")\r\n'
        ]
        assert await c.command('CREATE "a%b"') == [
            b"t6 NO [CANNOT] '%' is not allowed in mailbox names\r\n"
        ]
        assert await c.command('CREATE ""') == [
            b"t7 NO [CANNOT] empty mailbox name\r\n"
        ]
        assert await c.command("CREATE /") == [b"t8 NO [CANNOT] empty mailbox name\r\n"]
        assert await c.command("CREATE Notes/..") == [
            b"t9 NO [CANNOT] '..' is not a mailbox name\r\n"
        ]
        lines = await c.command("CREATE")
        assert lines[-1].startswith(b"t10 BAD ")
        assert "Notes" in await names(rig) and len(await names(rig)) == 7


async def test_delete(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        c = await rig.client(login=ANN)
        await c.ok("CREATE Work/Projects")
        await rig.deliver(ANN, message(1), "Work/Projects")
        assert await c.command("DELETE Work") == [
            b"t3 NO [CANNOT] mailbox has inferior mailboxes; delete them first\r\n"
        ]
        assert await c.command("DELETE INBOX") == [
            b"t4 NO [CANNOT] INBOX cannot be deleted\r\n"
        ]
        assert await c.command("DELETE Nowhere") == [
            b"t5 NO [NONEXISTENT] no such mailbox\r\n"
        ]
        assert await c.command("DELETE Work/Projects") == [
            b"t6 OK DELETE completed\r\n"
        ]
        assert await c.command("DELETE Work") == [b"t7 OK DELETE completed\r\n"]
        assert await c.command('LIST "" "W*"') == [b"t8 OK LIST completed\r\n"]
        used, _ = await rig.mail.store.usage(rig.users[ANN])
        assert used == 0  # the message went with its mailbox


async def test_delete_of_the_selected_mailbox(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        c = await rig.client(login=ANN)
        other = await rig.client(login=ANN)
        await c.ok("CREATE Old")
        await rig.deliver(ANN, message(1), "Old")
        await c.ok("SELECT Old")
        await other.ok("EXAMINE Old")

        assert await c.command("DELETE Old") == [
            b"* OK [CLOSED] Mailbox deleted, none selected\r\n",
            b"t4 OK DELETE completed\r\n",
        ]
        # The session is back in the authenticated state.
        assert await c.command("UNSELECT") == [
            b"t5 BAD No mailbox selected (SELECT or EXAMINE first)\r\n"
        ]
        assert await c.command("NOOP") == [b"t6 OK completed\r\n"]
        # Another session cannot stay in a mailbox that is gone.
        await other.send(b"x1 NOOP\r\n")
        assert await other.line() == b"* BYE The selected mailbox was deleted\r\n"


async def test_rename_with_inferiors(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        c = await rig.client(login=ANN)
        await c.ok("CREATE Work/Projects")
        await rig.deliver(ANN, message(1), "Work/Projects")
        before = await rig.mail.store.get_mailbox(rig.users[ANN], "Work/Projects")

        assert await c.command("RENAME Work Archive/Job") == [
            b"t3 OK RENAME completed\r\n"
        ]
        assert await c.command('LIST "" "Archive*"') == [
            b'* LIST (\\HasChildren \\Archive) "/" Archive\r\n',
            b'* LIST (\\HasChildren) "/" Archive/Job\r\n',
            b'* LIST (\\HasNoChildren) "/" Archive/Job/Projects\r\n',
            b"t4 OK LIST completed\r\n",
        ]
        after = await rig.mail.store.get_mailbox(rig.users[ANN], "Archive/Job/Projects")
        assert (after.id, after.uidvalidity) == (before.id, before.uidvalidity)

        assert await c.command("RENAME Nowhere Else") == [
            b"t5 NO [NONEXISTENT] no such mailbox\r\n"
        ]
        assert await c.command("RENAME Sent Trash") == [
            b"t6 NO [ALREADYEXISTS] mailbox already exists\r\n"
        ]
        assert await c.command("RENAME Sent inbox") == [
            b"t7 NO [ALREADYEXISTS] mailbox already exists\r\n"
        ]
        assert await c.command("RENAME Archive Archive/Below") == [
            b"t8 NO [CANNOT] cannot rename a mailbox under itself\r\n"
        ]
        # The special use stays with the mailbox.
        assert await c.command("RENAME Sent Outbox") == [b"t9 OK RENAME completed\r\n"]
        assert await c.command('LIST "" "Outbox"') == [
            b'* LIST (\\HasNoChildren \\Sent) "/" Outbox\r\n',
            b"t10 OK LIST completed\r\n",
        ]


async def test_rename_inbox_moves_its_messages(mail: MailRig) -> None:
    """RFC 3501 §6.3.5: INBOX stays, empty; its messages are in the new
    mailbox; sessions with INBOX selected see them expunged."""
    async with imap_rig(mail) as rig:
        await rig.deliver(ANN, message(1))
        await rig.deliver(ANN, message(2))
        c = await rig.client(login=ANN)
        other = await rig.client(login=ANN)
        await c.ok("SELECT INBOX")
        await other.ok("SELECT INBOX")

        assert await c.command("RENAME INBOX Old-Mail") == [
            b"* 2 EXPUNGE\r\n",
            b"* 1 EXPUNGE\r\n",
            b"t3 OK RENAME completed\r\n",
        ]
        assert await other.command("NOOP") == [
            b"* 2 EXPUNGE\r\n",
            b"* 1 EXPUNGE\r\n",
            b"t3 OK completed\r\n",
        ]
        lines = await c.command("STATUS Old-Mail (MESSAGES UIDNEXT)")
        assert lines == [
            b"* STATUS Old-Mail (MESSAGES 2 UIDNEXT 3)\r\n",
            b"t4 OK STATUS completed\r\n",
        ]
        assert await c.command("STATUS INBOX (MESSAGES)") == [
            b"* STATUS INBOX (MESSAGES 0)\r\n",
            b"t5 OK STATUS completed\r\n",
        ]
        assert await c.command("RENAME INBOX Old-Mail") == [
            b"t6 NO [ALREADYEXISTS] mailbox already exists\r\n"
        ]


# -- STATUS ---------------------------------------------------------------------


async def test_status_every_item(mail: MailRig) -> None:
    limits = SessionLimits()
    async with imap_rig(mail, limits) as rig:
        store = rig.mail.store
        user = rig.users[ANN]
        seen, unseen = message(1), message(2, 3000)
        await store.append(user, "Drafts", seen, flags=["\\Seen", "\\Deleted"])
        await store.append(user, "Drafts", unseen)
        box = await store.get_mailbox(user, "Drafts")
        c = await rig.client(login=ANN)

        items = (
            "MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN DELETED SIZE "
            "HIGHESTMODSEQ APPENDLIMIT"
        )
        assert await c.command(f"STATUS Drafts ({items})") == [
            b"* STATUS Drafts (MESSAGES 2 RECENT 0 UIDNEXT 3 UIDVALIDITY %d "
            b"UNSEEN 1 DELETED 1 SIZE %d HIGHESTMODSEQ %d APPENDLIMIT %d)\r\n"
            % (
                box.uidvalidity,
                len(seen) + len(unseen),
                box.highestmodseq,
                limits.parser.max_append,
            ),
            b"t2 OK STATUS completed\r\n",
        ]
        # Only INBOX is case-insensitive.
        assert await c.command("STATUS drafts (UNSEEN MESSAGES)") == [
            b"t3 NO [NONEXISTENT] no such mailbox\r\n"
        ]
        # Items come back in the order asked.
        assert await c.command("STATUS Drafts (UNSEEN MESSAGES)") == [
            b"* STATUS Drafts (UNSEEN 1 MESSAGES 2)\r\n",
            b"t4 OK STATUS completed\r\n",
        ]
        assert await c.command("STATUS inbox (MESSAGES)") == [
            b"* STATUS INBOX (MESSAGES 0)\r\n",
            b"t5 OK STATUS completed\r\n",
        ]
        lines = await c.command("STATUS INBOX (MESSAGES BOGUS)")
        assert lines[-1].startswith(b"t6 BAD ")


async def test_mailbox_commands_need_sign_in(mail: MailRig) -> None:
    async with imap_rig(mail) as rig:
        c = await rig.client()
        for command in ('LIST "" "*"', "CREATE X", "STATUS INBOX (MESSAGES)"):
            lines = await c.command(command)
            assert lines[-1].endswith(b"BAD Sign in first (LOGIN or AUTHENTICATE)\r\n")
        assert await names(rig) == [
            "INBOX",
            "Archive",
            "Drafts",
            "Junk",
            "Sent",
            "Trash",
        ]


# -- the wildcard matcher alone ----------------------------------------------------


def test_pattern_matching() -> None:
    cases = [
        ("*", "INBOX/a", True),
        ("%", "INBOX/a", False),
        ("%/%", "INBOX/a", True),
        ("inb*", "INBOX", True),
        ("I%B%X", "INBOX", True),
        ("i%", "Inbox2", False),
        ("foo%", "foo", True),
        ("f%o", "f/o", False),
        ("f*o", "f/o", True),
        ("%%*%", "a/b", True),
        ("a%%b", "a/b", False),
        ("Entwu\u0308rfe", "Entwürfe", True),  # NFC, as names are stored
        ("", "", True),
        ("a", "", False),
    ]
    for pattern, name, expected in cases:
        assert Pattern(pattern).matches(name) is expected, (pattern, name)


def test_pattern_matching_is_linear() -> None:
    """A backtracking matcher takes exponential time on this; one that
    steps through the name answers at once."""
    hostile = Pattern("*a" * 40 + "*b")
    assert hostile.matches("a" * 999) is False
    assert hostile.matches("a" * 998 + "b") is True
    assert Pattern("x" * 1001 + "*").matches("x" * 1000) is False
