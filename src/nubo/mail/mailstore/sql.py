"""The SQL steps of the mailstore, each run inside a transaction its caller
(``service``) opened; none commits.

Lock order, the same in every transaction so that PostgreSQL never
deadlocks: mailbox rows first (ascending id), then the user's
``user_usage`` row, then ``blobs`` rows (ascending id, through
``Blobs.ref``/``unref``). On SQLite every write transaction holds the
database lock from its start (``BEGIN IMMEDIATE``), so order is moot there.

UIDs and MODSEQs come from one ``UPDATE mailboxes ... RETURNING``: the row
lock it takes serializes every change of one mailbox, across processes, and
a rolled-back transaction gives its UIDs back, so UIDs stay gapless only
until an expunge (RFC 3501 §2.3.1.1 asks for strictly ascending, not dense).
"""

from __future__ import annotations

import functools
import operator
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnClause

from nubo.accounts.quota import format_size
from nubo.mail.mailstore.errors import (
    MailstoreError,
    NoSuchMailbox,
    QuotaExceeded,
    UnknownUser,
)
from nubo.mail.mailstore.models import Mailbox
from nubo.store.schema import mailboxes, messages, user_usage, users

MAILBOX_COLUMNS = (
    mailboxes.c.id,
    mailboxes.c.user_id,
    mailboxes.c.name,
    mailboxes.c.special_use,
    mailboxes.c.subscribed,
    mailboxes.c.uidvalidity,
    mailboxes.c.uidnext,
    mailboxes.c.highestmodseq,
)

# The first key of the two-key PostgreSQL advisory locks that serialize one
# user's mailbox hierarchy changes (the second is the user id); two-key locks
# do not share a key space with the one-key lock of migrations.
HIERARCHY_LOCK = 0x6D626F78  # "mbox"

# UIDVALIDITY is an unsigned 32-bit nonzero number (RFC 3501 §2.3.1.1).
MAX_UIDVALIDITY = 2**32 - 1

# Values per IN list and BETWEEN ranges per statement: far below the bind
# parameter limits of SQLite (32766) and asyncpg (32767).
IN_CHUNK = 500
RANGES_PER_QUERY = 50


def insert(dialect: str, table: Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT that knows ON CONFLICT on either database."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def to_mailbox(row: Any) -> Mailbox:
    return Mailbox(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        special_use=row.special_use,
        subscribed=bool(row.subscribed),
        uidvalidity=row.uidvalidity,
        uidnext=row.uidnext,
        highestmodseq=row.highestmodseq,
    )


# -- mailbox rows ----------------------------------------------------------


async def bump(
    conn: AsyncConnection, *where: ColumnElement[bool], uids: int = 0
) -> Mailbox | None:
    """Take ``uids`` UIDs and one new MODSEQ from the mailbox ``where``
    names, locking its row; the mailbox after the change, or None.

    The new UIDs are ``uidnext - uids`` up to ``uidnext - 1`` of the result,
    the new MODSEQ its ``highestmodseq``.
    """
    stmt = (
        update(mailboxes)
        .where(*where)
        .values(
            uidnext=mailboxes.c.uidnext + uids,
            highestmodseq=mailboxes.c.highestmodseq + 1,
        )
        .returning(*MAILBOX_COLUMNS)
    )
    row = (await conn.execute(stmt)).first()
    return None if row is None else to_mailbox(row)


async def bump_id(conn: AsyncConnection, mailbox_id: int, *, uids: int = 0) -> Mailbox:
    """``bump`` of the mailbox with this id; ``NoSuchMailbox`` if it is gone."""
    box = await bump(conn, mailboxes.c.id == mailbox_id, uids=uids)
    if box is None:
        raise NoSuchMailbox("no such mailbox")
    return box


async def lock(conn: AsyncConnection, ids: Iterable[int]) -> dict[int, Mailbox]:
    """The mailboxes of ``ids``, row-locked in ascending id order;
    ``NoSuchMailbox`` if one is missing."""
    wanted = sorted(set(ids))
    stmt = (
        select(*MAILBOX_COLUMNS)
        .where(mailboxes.c.id.in_(wanted))
        .order_by(mailboxes.c.id)
        .with_for_update()
    )
    found = {row.id: to_mailbox(row) for row in await conn.execute(stmt)}
    if len(found) != len(wanted):
        raise NoSuchMailbox("no such mailbox")
    return found


async def find(
    conn: AsyncConnection, *where: ColumnElement[bool], for_update: bool = False
) -> Mailbox | None:
    """The first mailbox (lowest id) ``where`` names."""
    stmt = select(*MAILBOX_COLUMNS).where(*where).order_by(mailboxes.c.id).limit(1)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    return None if row is None else to_mailbox(row)


async def lock_hierarchy(conn: AsyncConnection, dialect: str, user_id: int) -> None:
    """Serialize changes to the user's list of mailboxes until the commit.

    CREATE, RENAME and DELETE check names against the whole list; without
    this, two of them on PostgreSQL could each pass their check (say, a
    RENAME of "A" and a CREATE of "A/x") and leave a child without its
    parent. Message changes do not take this lock, so it never waits in a
    cycle with the mailbox row locks. SQLite's write lock already
    serializes everything.
    """
    if dialect == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(HIERARCHY_LOCK, user_id)))


async def user_mailboxes(conn: AsyncConnection, user_id: int) -> list[Mailbox]:
    stmt = select(*MAILBOX_COLUMNS).where(mailboxes.c.user_id == user_id)
    return [to_mailbox(row) for row in await conn.execute(stmt)]


async def user_exists(conn: AsyncConnection, user_id: int) -> bool:
    stmt = select(users.c.id).where(users.c.id == user_id)
    return (await conn.execute(stmt)).first() is not None


class UidValidityClock:
    """UIDVALIDITY values: the time in seconds, raised past every value this
    process gave and past the user's current ones.

    A mailbox deleted and created again gets a greater value, so clients
    drop what they cached of the old one (RFC 3501 §2.3.1.1).

    Limitation: the values a process remembers are its own. If a mailbox
    holding the user's greatest UIDVALIDITY is deleted in one process and
    created again by another within the same second, both incarnations can
    get the same value. A per-user counter column would close this.
    """

    def __init__(self) -> None:
        self._last = 0

    def take(self, at_least: int, count: int) -> int:
        """The first of ``count`` consecutive fresh values."""
        first = max(int(time.time()), at_least, self._last + 1)
        if first + count - 1 > MAX_UIDVALIDITY:
            raise MailstoreError("no UIDVALIDITY left")
        self._last = first + count - 1
        return first


CLOCK = UidValidityClock()


async def new_uidvalidity(conn: AsyncConnection, user_id: int, count: int) -> int:
    """The first of ``count`` UIDVALIDITY values for new mailboxes of a user."""
    stmt = select(func.max(mailboxes.c.uidvalidity)).where(
        mailboxes.c.user_id == user_id
    )
    current = (await conn.execute(stmt)).scalar_one_or_none() or 0
    return CLOCK.take(current + 1, count)


# -- quota -----------------------------------------------------------------


async def charge(conn: AsyncConnection, dialect: str, user_id: int, size: int) -> None:
    """Count ``size`` more bytes for the user, or ``QuotaExceeded``.

    One conditional UPDATE checks and counts, so concurrent deliveries cannot
    both pass a check that only one of them fits.
    """
    if await _try_charge(conn, user_id, size):
        return
    quota = (
        await conn.execute(select(users.c.quota_bytes).where(users.c.id == user_id))
    ).scalar_one_or_none()
    if quota is None:
        raise UnknownUser("no such user")

    # The row is created on first use.
    await conn.execute(
        insert(dialect, user_usage)
        .values(user_id=user_id, mail_bytes=0)
        .on_conflict_do_nothing(index_elements=[user_usage.c.user_id])
    )
    if await _try_charge(conn, user_id, size):
        return
    if size > quota:
        raise QuotaExceeded(f"message larger than the {format_size(quota)} quota")
    raise QuotaExceeded(f"mailbox full: {format_size(quota)} quota")


async def _try_charge(conn: AsyncConnection, user_id: int, size: int) -> bool:
    quota = select(users.c.quota_bytes).where(users.c.id == user_id).scalar_subquery()
    stmt = (
        update(user_usage)
        .where(
            user_usage.c.user_id == user_id,
            or_(quota == 0, user_usage.c.mail_bytes + size <= quota),
        )
        .values(mail_bytes=user_usage.c.mail_bytes + size)
    )
    return bool((await conn.execute(stmt)).rowcount == 1)


async def refund(conn: AsyncConnection, user_id: int, size: int) -> None:
    """Count ``size`` bytes fewer for the user (never below zero)."""
    if size == 0:
        return
    used = user_usage.c.mail_bytes
    await conn.execute(
        update(user_usage)
        .where(user_usage.c.user_id == user_id)
        .values(mail_bytes=case((used > size, used - size), else_=0))
    )


# -- message rows ----------------------------------------------------------


def uid_conditions(
    column: ColumnClause[Any] | Any, uids: Iterable[int]
) -> list[ColumnElement[bool]]:
    """Conditions that together select ``uids``, one per statement to run.

    Runs of three or more become BETWEEN ranges and the rest IN lists, so
    "1:*" over a large mailbox is one short statement.
    """
    ordered = sorted(set(uids))
    ranges: list[tuple[int, int]] = []
    singles: list[int] = []
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        if end - start >= 2:
            ranges.append((ordered[start], ordered[end]))
        else:
            singles.extend(ordered[start : end + 1])
        start = end + 1

    conditions: list[ColumnElement[bool]] = []
    for n in range(0, len(ranges), RANGES_PER_QUERY):
        chunk = ranges[n : n + RANGES_PER_QUERY]
        # The outer span lets SQLite walk the (mailbox_id, uid) index; with
        # the OR alone it scans the whole mailbox (68 ms against 1 ms at
        # 100,000 messages).
        span = column.between(chunk[0][0], chunk[-1][1])
        conditions.append(
            and_(span, or_(*(column.between(lo, hi) for lo, hi in chunk)))
        )
    for n in range(0, len(singles), IN_CHUNK):
        conditions.append(column.in_(singles[n : n + IN_CHUNK]))
    return conditions


async def select_messages(
    conn: AsyncConnection,
    mailbox_id: int,
    uids: Sequence[int] | None,
    columns: Sequence[Any],
    *where: ColumnElement[bool],
) -> list[Row[Any]]:
    """Rows of a mailbox's messages (all, or those of ``uids``), ascending
    UID; ``columns`` must include ``messages.c.uid``."""
    if uids and not where and _one_run(uids):
        # The commonest case (a window, or 1:*) by a statement built once.
        values = {"mailbox_id": mailbox_id, "low": uids[0], "high": uids[-1]}
        return list(await conn.execute(_run_statement(tuple(columns)), values))
    base = select(*columns).where(messages.c.mailbox_id == mailbox_id, *where)
    if uids is None and where:
        # Sorted here: with ORDER BY, SQLite walks the mailbox in UID order
        # instead of using an index of the condition (MODSEQ, say).
        return sorted(await conn.execute(base), key=by_uid)
    if uids is None:
        return list(await conn.execute(base.order_by(messages.c.uid)))
    found: list[Row[Any]] = []
    for condition in uid_conditions(messages.c.uid, uids):
        found.extend(await conn.execute(base.where(condition)))
    found.sort(key=by_uid)
    return found


by_uid = operator.attrgetter("uid")
"""Sort key of message rows."""


def _one_run(uids: Sequence[int]) -> bool:
    """Whether ``uids`` is one ascending run with no gap (2, 3, 4, 5)."""
    first, last = uids[0], uids[-1]
    return (
        last - first + 1 == len(uids)
        and min(uids) == first
        and max(uids) == last
        and len(set(uids)) == len(uids)
    )


@functools.cache
def _run_statement(columns: tuple[Any, ...]) -> Select[Any]:
    """``columns`` of one mailbox's messages between two UIDs: built, and
    its cache key made, once per set of columns instead of per query."""
    return (
        select(*columns)
        .where(
            messages.c.mailbox_id == bindparam("mailbox_id"),
            messages.c.uid.between(bindparam("low"), bindparam("high")),
        )
        .order_by(messages.c.uid)
    )


def chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    for n in range(0, len(values), size):
        yield values[n : n + size]
