"""Mailbox lifecycle in SQL: create, the default set, rename, delete.

Each function runs inside the caller's write transaction and returns what
changed, so that the service can publish events after the commit. A user's
mailbox list is small (tens, rarely hundreds), so the hierarchy rules are
checked on the whole list in Python rather than with LIKE patterns, which
would need escaping of "_" in names.

RFC 3501 §6.3.3: CREATE also creates the missing superior names.
RFC 3501 §6.3.5: RENAME renames inferior names with the mailbox, except for
INBOX, whose messages move to a new mailbox while INBOX stays, empty, with
its inferiors untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from sqlalchemy import BigInteger, delete, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from nubo.mail.mailstore import sql
from nubo.mail.mailstore.errors import (
    InvalidMailboxName,
    InvalidSpecialUse,
    MailboxExists,
    MailboxHasChildren,
    NoSuchMailbox,
)
from nubo.mail.mailstore.models import Mailbox
from nubo.mail.mailstore.names import (
    DEFAULT_MAILBOXES,
    INBOX,
    is_inferior,
    parents,
)
from nubo.store.schema import expunged, mailboxes, messages, user_usage, utcnow


async def create(
    conn: AsyncConnection,
    dialect: str,
    user_id: int,
    name: str,
    use: str | None,
    *,
    existing: dict[str, Mailbox] | None = None,
) -> list[Mailbox]:
    """Create ``name`` (with special use ``use``) and its missing superior
    names; the new mailboxes, ``name``'s last. ``MailboxExists`` if taken."""
    if existing is None:
        await sql.lock_hierarchy(conn, dialect, user_id)
        existing = await by_name(conn, user_id)
    if name in existing:
        raise MailboxExists("mailbox already exists")
    if use is not None and any(m.special_use == use for m in existing.values()):
        raise InvalidSpecialUse(f"another mailbox is already \\{use}")

    wanted: list[tuple[str, str | None]] = [
        (p, None) for p in parents(name) if p not in existing
    ]
    wanted.append((name, use))
    created = await _insert(conn, dialect, user_id, wanted, existing)
    if not created or created[-1].name != name:
        raise MailboxExists("mailbox already exists")  # a concurrent CREATE won
    return created


async def ensure_defaults(
    conn: AsyncConnection, dialect: str, user_id: int
) -> list[Mailbox]:
    """Give the user INBOX and one mailbox of each default special use; the
    mailboxes created or given a special use.

    A special use some mailbox already has is left alone (the user may have
    renamed "Sent" to "Sent Items"); a default name that exists without a
    special use gets it. Safe when two processes race: inserts skip names
    another transaction committed meanwhile.
    """
    await sql.lock_hierarchy(conn, dialect, user_id)
    existing = await by_name(conn, user_id)
    uses = {m.special_use for m in existing.values()}
    changed: list[Mailbox] = []
    wanted: list[tuple[str, str | None]] = []
    for name, use in DEFAULT_MAILBOXES:
        if use is not None and use in uses:
            continue
        box = existing.get(name)
        if box is None:
            wanted.append((name, use))
        elif use is not None and box.special_use is None:
            await conn.execute(
                update(mailboxes)
                .where(mailboxes.c.id == box.id)
                .values(special_use=use)
            )
            changed.append(replace(box, special_use=use))
    changed.extend(await _insert(conn, dialect, user_id, wanted, existing))
    await conn.execute(
        sql.insert(dialect, user_usage)
        .values(user_id=user_id, mail_bytes=0)
        .on_conflict_do_nothing(index_elements=[user_usage.c.user_id])
    )
    return changed


async def _insert(
    conn: AsyncConnection,
    dialect: str,
    user_id: int,
    wanted: Sequence[tuple[str, str | None]],
    existing: dict[str, Mailbox],
) -> list[Mailbox]:
    """Insert mailboxes, skipping names taken meanwhile; those inserted."""
    if not wanted:
        return []
    highest = max((m.uidvalidity for m in existing.values()), default=0)
    first = sql.CLOCK.take(highest + 1, len(wanted))
    now = utcnow()
    created: list[Mailbox] = []
    for n, (name, use) in enumerate(wanted):
        stmt = (
            sql.insert(dialect, mailboxes)
            .values(
                user_id=user_id,
                name=name,
                special_use=use,
                subscribed=True,
                uidvalidity=first + n,
                uidnext=1,
                highestmodseq=1,
                created_at=now,
            )
            .on_conflict_do_nothing(
                index_elements=[mailboxes.c.user_id, mailboxes.c.name]
            )
            .returning(*sql.MAILBOX_COLUMNS)
        )
        row = (await conn.execute(stmt)).first()
        if row is not None:
            created.append(sql.to_mailbox(row))
    return created


async def by_name(conn: AsyncConnection, user_id: int) -> dict[str, Mailbox]:
    return {m.name: m for m in await sql.user_mailboxes(conn, user_id)}


async def rename(
    conn: AsyncConnection, dialect: str, user_id: int, old: str, new: str
) -> tuple[list[Mailbox], list[Mailbox]]:
    """Rename ``old`` and its inferiors; (renamed, created parents).

    The mailboxes keep their id and UIDVALIDITY (RFC 3501 §6.3.5 asks no
    change), and each gets a new MODSEQ.
    """
    if new in (old, INBOX):
        raise MailboxExists("mailbox already exists")
    if is_inferior(new, old):
        raise InvalidMailboxName("cannot rename a mailbox under itself")
    await sql.lock_hierarchy(conn, dialect, user_id)
    existing = await by_name(conn, user_id)
    if old not in existing:
        raise NoSuchMailbox("no such mailbox")

    moving = [m for m in existing.values() if m.name == old or is_inferior(m.name, old)]
    targets = {m.id: new + m.name[len(old) :] for m in moving}
    if any(target in existing for target in targets.values()):
        raise MailboxExists("mailbox already exists")
    missing: list[tuple[str, str | None]] = [
        (p, None) for p in parents(new) if p not in existing
    ]
    created = await _insert(conn, dialect, user_id, missing, existing)

    renamed: list[Mailbox] = []
    for box in sorted(moving, key=lambda m: m.id):
        await conn.execute(
            update(mailboxes)
            .where(mailboxes.c.id == box.id)
            .values(name=targets[box.id])
        )
        after = await sql.bump_id(conn, box.id)
        renamed.append(after)
    return renamed, created


async def rename_inbox(
    conn: AsyncConnection, dialect: str, user_id: int, new: str
) -> tuple[Mailbox, list[Mailbox]]:
    """Move every message of INBOX to a new mailbox ``new``; (INBOX after,
    created mailboxes, ``new``'s last).

    The new mailbox keeps the messages' UIDs and MODSEQs: it has a fresh
    UIDVALIDITY, so no client can confuse them with INBOX's. INBOX records
    the UIDs as expunged, for QRESYNC (RFC 7162 §3.2.10).
    """
    await sql.lock_hierarchy(conn, dialect, user_id)
    existing = await by_name(conn, user_id)
    inbox = existing.get(INBOX)
    if inbox is None:
        raise NoSuchMailbox("no INBOX")
    inbox = (await sql.lock(conn, [inbox.id]))[inbox.id]
    created = await create(conn, dialect, user_id, new, None, existing=existing)
    target = created[-1]

    inbox_after = await sql.bump_id(conn, inbox.id)
    await conn.execute(
        insert(expunged).from_select(
            ["mailbox_id", "uid", "modseq"],
            select(
                messages.c.mailbox_id,
                messages.c.uid,
                literal(inbox_after.highestmodseq, BigInteger),
            ).where(messages.c.mailbox_id == inbox.id),
        )
    )
    await conn.execute(
        update(messages)
        .where(messages.c.mailbox_id == inbox.id)
        .values(mailbox_id=target.id)
    )
    await conn.execute(
        update(mailboxes)
        .where(mailboxes.c.id == target.id)
        .values(uidnext=inbox.uidnext, highestmodseq=inbox.highestmodseq + 1)
    )
    created[-1] = replace(
        target, uidnext=inbox.uidnext, highestmodseq=inbox.highestmodseq + 1
    )
    return inbox_after, created


async def delete_one(
    conn: AsyncConnection, dialect: str, user_id: int, name: str
) -> tuple[Mailbox, list[tuple[int, str]]]:
    """Delete a mailbox without inferiors, with its messages; (the mailbox,
    (size, blob id) of each message) for the caller to refund and unref."""
    await sql.lock_hierarchy(conn, dialect, user_id)
    existing = await by_name(conn, user_id)
    box = existing.get(name)
    if box is None:
        raise NoSuchMailbox("no such mailbox")
    if any(is_inferior(other, name) for other in existing):
        raise MailboxHasChildren("mailbox has inferior mailboxes; delete them first")
    await sql.lock(conn, [box.id])
    found = await drop_messages(conn, [box.id])
    await conn.execute(delete(mailboxes).where(mailboxes.c.id == box.id))
    return box, found


async def drop_messages(
    conn: AsyncConnection, mailbox_ids: Sequence[int]
) -> list[tuple[int, str]]:
    """Delete every message of the mailboxes, and their expunge records;
    (size, blob id) of each message deleted."""
    found: list[tuple[int, str]] = []
    for chunk in sql.chunks(sorted(mailbox_ids)):
        rows = await conn.execute(
            select(messages.c.size, messages.c.blob_id).where(
                messages.c.mailbox_id.in_(chunk)
            )
        )
        found.extend((row.size, row.blob_id) for row in rows)
        await conn.execute(delete(messages).where(messages.c.mailbox_id.in_(chunk)))
        await conn.execute(delete(expunged).where(expunged.c.mailbox_id.in_(chunk)))
    return found
