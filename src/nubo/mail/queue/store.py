"""The queue in SQL: messages, their recipients, leases and outcomes.

Tables ``queue_messages`` and ``queue_recipients`` (see ``store.schema``).
A message row holds the envelope sender and references its bytes in the
blob store (one ``ref``); each recipient row has its own state, attempts,
next attempt time and lease. Rules kept here:

- Enqueue is durable when it returns: the bytes are ``put`` first, then one
  transaction inserts the rows and takes the blob reference.
- A worker leases due recipients of one destination domain: on PostgreSQL
  with ``SELECT ... FOR UPDATE SKIP LOCKED``, so concurrent workers of
  several processes take disjoint rows; on SQLite the ``BEGIN IMMEDIATE``
  write transaction serializes them. A lease is ``lease_until`` and
  ``lease_owner``; a row whose lease ran out is due again, so the rows of a
  dead process are taken over.
- An outcome is written only by the lease's owner, only while the row is
  still queued (``apply``): a row taken over or deleted meanwhile is left
  alone.
- A message whose recipients are all finished is deleted, with its rows and
  its blob reference, in the transaction that finished the last one.
- A DSN is enqueued in the same transaction that marks its recipients
  bounced or notified, so a crash can lose neither the outcome nor the
  report.

Every time compared or written comes from the caller's clock, never from
the database server's, so tests can move time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from nubo.accounts.addresses import normalize_domain
from nubo.accounts.errors import InvalidDomain
from nubo.mail.queue.errors import InvalidRecipient, NoSuchQueueMessage, QueueError
from nubo.mail.queue.model import MAX_QUEUE_ID, Leased, QueueEntry
from nubo.mail.queue.schedule import Decision, Report
from nubo.store.blobs import Blobs
from nubo.store.database import Database
from nubo.store.schema import queue_messages as qm
from nubo.store.schema import queue_recipients as qr

MAX_ADDRESS = 320  # the columns' width


@dataclass(frozen=True)
class PendingDsn:
    """A report whose bytes are in the blob store, to queue with the outcome
    of the recipients it reports on."""

    to: str  # the original sender
    blob_id: str
    size: int
    about: tuple[int, ...]  # recipient row ids it reports on


def split_recipient(address: str) -> tuple[str, str]:
    """(address with its domain in lookup form, domain), or InvalidRecipient."""
    if _has_controls(address):
        raise InvalidRecipient("invalid recipient: control characters")
    local, at, domain = address.strip().rpartition("@")
    if not at or not local:
        raise InvalidRecipient(f"invalid recipient {address[:80]!r}: no domain")
    try:
        ascii_domain = normalize_domain(domain)
    except InvalidDomain as exc:
        raise InvalidRecipient(f"invalid recipient: {exc}") from None
    normalized = f"{local}@{ascii_domain}"
    if len(normalized) > MAX_ADDRESS:
        raise InvalidRecipient("invalid recipient: address too long")
    return normalized, ascii_domain


class QueueStore:
    """Every read and write of the queue tables, one transaction each."""

    def __init__(self, db: Database, blobs: Blobs) -> None:
        self.db = db
        self.blobs = blobs

    # -- enqueue ----------------------------------------------------------

    async def enqueue(
        self,
        sender: str,
        recipients: Sequence[str],
        raw: bytes,
        *,
        user_id: int | None,
        now: datetime,
    ) -> int:
        if len(sender) > MAX_ADDRESS:
            raise QueueError("sender address too long")
        if _has_controls(sender):
            # It goes into SMTP commands and into a report's header.
            raise QueueError("invalid sender: control characters")
        rows = _unique(split_recipient(address) for address in recipients)
        if not rows:
            raise QueueError("a message needs at least one recipient")

        blob_id, size = await self.blobs.put_bytes(raw)
        async with self.db.write() as conn:
            return await self._insert(conn, sender, blob_id, size, user_id, rows, now)

    async def _insert(
        self,
        conn: AsyncConnection,
        sender: str,
        blob_id: str,
        size: int,
        user_id: int | None,
        rows: Sequence[tuple[str, str]],
        now: datetime,
    ) -> int:
        message_id = (
            await conn.execute(
                insert(qm)
                .values(
                    sender=sender,
                    blob_id=blob_id,
                    size=size,
                    user_id=user_id,
                    created_at=now,
                )
                .returning(qm.c.id)
            )
        ).scalar_one()
        await self.blobs.ref(conn, blob_id)
        await conn.execute(
            insert(qr),
            [
                {
                    "message_id": message_id,
                    "recipient": recipient,
                    "domain": domain,
                    "next_attempt_at": now,
                }
                for recipient, domain in rows
            ],
        )
        return int(message_id)

    # -- leases -----------------------------------------------------------

    async def lease(
        self, owner: str, now: datetime, until: datetime, limit: int
    ) -> list[Leased]:
        """Lease up to ``limit`` due recipients of the domain that has waited
        longest; empty when nothing is due."""
        due = and_(
            qr.c.state == "queued",
            qr.c.next_attempt_at <= now,
            or_(qr.c.lease_until.is_(None), qr.c.lease_until <= now),
        )
        async with self.db.write() as conn:
            domain = (
                await conn.execute(
                    select(qr.c.domain)
                    .where(due)
                    .order_by(qr.c.next_attempt_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).scalar_one_or_none()
            if domain is None:
                return []
            ids = list(
                (
                    await conn.execute(
                        select(qr.c.id)
                        .where(due, qr.c.domain == domain)
                        .order_by(qr.c.message_id, qr.c.id)
                        .limit(limit)
                        .with_for_update(skip_locked=True)
                    )
                ).scalars()
            )
            if not ids:
                return []
            await conn.execute(
                update(qr)
                .where(qr.c.id.in_(ids))
                .values(lease_until=until, lease_owner=owner)
            )
            found = await conn.execute(
                select(
                    qr.c.id,
                    qr.c.message_id,
                    qr.c.recipient,
                    qr.c.domain,
                    qr.c.attempts,
                    qr.c.delay_notified,
                    qm.c.sender,
                    qm.c.blob_id,
                    qm.c.size,
                    qm.c.created_at,
                )
                .join(qm, qm.c.id == qr.c.message_id)
                .where(qr.c.id.in_(ids))
                .order_by(qr.c.message_id, qr.c.id)
            )
            return [
                Leased(
                    id=row.id,
                    message_id=row.message_id,
                    recipient=row.recipient,
                    domain=row.domain,
                    attempts=row.attempts,
                    delay_notified=bool(row.delay_notified),
                    sender=row.sender,
                    blob_id=row.blob_id,
                    size=row.size,
                    created_at=row.created_at,
                )
                for row in found
            ]

    async def release(self, owner: str, ids: Iterable[int] | None = None) -> int:
        """Give back leases of ``owner`` without counting an attempt (all of
        them when ``ids`` is None); returns how many."""
        where = [qr.c.lease_owner == owner, qr.c.state == "queued"]
        if ids is not None:
            where.append(qr.c.id.in_(list(ids)))
        async with self.db.write() as conn:
            result = await conn.execute(
                update(qr).where(*where).values(lease_until=None, lease_owner=None)
            )
        return int(result.rowcount)

    async def release_all(self) -> int:
        """Give back every lease: for SQLite, where one process owns the queue,
        at its start (the leases are a previous run's)."""
        async with self.db.write() as conn:
            result = await conn.execute(
                update(qr)
                .where(qr.c.lease_owner.is_not(None))
                .values(lease_until=None, lease_owner=None)
            )
        return int(result.rowcount)

    # -- outcomes ---------------------------------------------------------

    async def apply(
        self,
        owner: str,
        decisions: Sequence[Decision],
        reports: Sequence[PendingDsn],
        now: datetime,
        *,
        split: Mapping[int, Sequence[str]] | None = None,
    ) -> set[int]:
        """Write the decisions of one message's attempt, queue its reports,
        and delete what is finished, in one transaction.

        ``split`` maps a recipient row id to addresses that still need the
        message on their own (an alias delivered to only some of its users):
        each gets a new queued row, due like its original would have been.
        Returns the row ids whose outcome was written: those still leased
        by ``owner``.
        """
        applied: set[int] = set()
        message_ids = sorted({d.row.message_id for d in decisions})
        async with self.db.write() as conn:
            # Lock the messages first: two workers finishing the last two
            # recipients of one message would otherwise each still see the
            # other's row queued (PostgreSQL's read committed), and neither
            # would delete the message.
            await conn.execute(
                select(qm.c.id).where(qm.c.id.in_(message_ids)).with_for_update()
            )
            for decision in decisions:
                if await self._write_decision(conn, owner, decision):
                    applied.add(decision.row.id)
            for decision in decisions:
                extra = (split or {}).get(decision.row.id, ())
                if extra and decision.row.id in applied:
                    await self._add_rows(conn, decision, extra, now)
            for report in reports:
                if applied.intersection(report.about):
                    rows = [split_recipient(report.to)]
                    await self._insert(
                        conn, "", report.blob_id, report.size, None, rows, now
                    )
            for message_id in message_ids:
                await self._finish_if_done(conn, message_id)
        return applied

    async def _write_decision(
        self, conn: AsyncConnection, owner: str, decision: Decision
    ) -> bool:
        values: dict[str, object] = {
            "state": decision.state,
            "attempts": qr.c.attempts + 1,
            "last_reply": str(decision.reply),
            "lease_until": None,
            "lease_owner": None,
        }
        if decision.state == "queued":
            values["next_attempt_at"] = decision.next_attempt_at
        if decision.report is Report.DELAYED:
            values["delay_notified"] = True
        result = await conn.execute(
            update(qr)
            .where(
                qr.c.id == decision.row.id,
                qr.c.lease_owner == owner,
                qr.c.state == "queued",
            )
            .values(values)
        )
        return bool(result.rowcount == 1)

    async def _add_rows(
        self,
        conn: AsyncConnection,
        decision: Decision,
        addresses: Sequence[str],
        now: datetime,
    ) -> None:
        due = decision.next_attempt_at or now
        rows = []
        for address in addresses:
            try:
                rows.append(split_recipient(address))
            except InvalidRecipient:
                continue  # accounts hold valid addresses; never lose the outcome
        if not rows:
            return
        await conn.execute(
            insert(qr),
            [
                {
                    "message_id": decision.row.message_id,
                    "recipient": recipient,
                    "domain": domain,
                    "attempts": decision.row.attempts + 1,
                    "next_attempt_at": due,
                    "last_reply": str(decision.reply),
                    "delay_notified": decision.row.delay_notified,
                }
                for recipient, domain in _unique(rows)
            ],
        )

    async def _finish_if_done(self, conn: AsyncConnection, message_id: int) -> bool:
        """Delete the message if no recipient is queued; whether it was."""
        if await _pending(conn, message_id):
            return False
        blob_id = (
            await conn.execute(
                delete(qm).where(qm.c.id == message_id).returning(qm.c.blob_id)
            )
        ).scalar_one_or_none()
        if blob_id is None:
            return False  # deleted by `nubo queue delete` meanwhile
        await conn.execute(delete(qr).where(qr.c.message_id == message_id))
        await self.blobs.unref(conn, blob_id)
        return True

    # -- administration ---------------------------------------------------

    async def entries(self) -> list[QueueEntry]:
        """Every message with a recipient still queued, oldest first."""
        async with self.db.read() as conn:
            found = await conn.execute(
                select(
                    qm.c.id,
                    qm.c.sender,
                    qm.c.size,
                    qm.c.created_at,
                    qr.c.attempts,
                    qr.c.next_attempt_at,
                    qr.c.last_reply,
                )
                .join(qr, qr.c.message_id == qm.c.id)
                .where(qr.c.state == "queued")
                .order_by(qm.c.id, qr.c.id)
            )
            rows = found.all()

        entries: list[QueueEntry] = []
        for row in rows:
            last = entries[-1] if entries else None
            if last is None or last.id != row.id:
                entries.append(
                    QueueEntry(
                        id=row.id,
                        sender=row.sender,
                        size=row.size,
                        created_at=row.created_at,
                        recipients=1,
                        attempts=row.attempts,
                        next_attempt_at=row.next_attempt_at,
                        last_reply=row.last_reply,
                    )
                )
                continue
            entries[-1] = QueueEntry(
                id=last.id,
                sender=last.sender,
                size=last.size,
                created_at=last.created_at,
                recipients=last.recipients + 1,
                attempts=max(last.attempts, row.attempts),
                next_attempt_at=min(last.next_attempt_at, row.next_attempt_at),
                last_reply=last.last_reply or row.last_reply,
            )
        return entries

    async def retry(self, message_id: int | None, now: datetime) -> int:
        """Make queued recipients due now; returns how many messages."""
        where = [qr.c.state == "queued"]
        if message_id is not None:
            _check_id(message_id)
            where.append(qr.c.message_id == message_id)
        async with self.db.write() as conn:
            count = (
                await conn.execute(
                    select(func.count(func.distinct(qr.c.message_id))).where(*where)
                )
            ).scalar_one()
            if message_id is not None and not count:
                raise NoSuchQueueMessage(message_id)
            await conn.execute(update(qr).where(*where).values(next_attempt_at=now))
        return int(count)

    async def delete(self, message_id: int) -> int:
        """Remove a message and its blob reference; returns how many of its
        recipients were still queued."""
        _check_id(message_id)
        async with self.db.write() as conn:
            blob_id = (
                await conn.execute(
                    select(qm.c.blob_id).where(qm.c.id == message_id).with_for_update()
                )
            ).scalar_one_or_none()
            if blob_id is None:
                raise NoSuchQueueMessage(message_id)
            pending = await _pending(conn, message_id)
            await conn.execute(delete(qr).where(qr.c.message_id == message_id))
            await conn.execute(delete(qm).where(qm.c.id == message_id))
            await self.blobs.unref(conn, blob_id)
        return pending


def _check_id(message_id: int) -> None:
    # An id out of the column's range is in no row; the driver would raise
    # OverflowError (SQLite) or DataError (PostgreSQL) for it instead.
    if not 1 <= message_id <= MAX_QUEUE_ID:
        raise NoSuchQueueMessage(message_id)


async def _pending(conn: AsyncConnection, message_id: int) -> int:
    """How many recipients of the message are still queued."""
    count = (
        await conn.execute(
            select(func.count())
            .select_from(qr)
            .where(qr.c.message_id == message_id, qr.c.state == "queued")
        )
    ).scalar_one()
    return int(count)


def _unique(rows: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Rows without repeats, in their first order."""
    return list(dict.fromkeys(rows))


def _has_controls(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)
