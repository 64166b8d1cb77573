"""Blobs: content-addressed bytes in a backend, accounted for in SQL.

A blob's id is the SHA-256 of its bytes, so identical bytes are stored once.
Each distinct content has one row in the ``blobs`` table: ``refcount``
counts the committed rows of other tables that use it (each caller calls
``ref``/``unref`` inside its own transaction), and ``pinned_until`` protects
freshly written bytes until their writer has had time to commit its
reference (``blob_gc_grace`` seconds).

The invariant: **every committed row has its bytes under their final
name**, except a row with refcount 0 whose pin has expired while the
collector was deleting it (it finishes the job on its next run). Nothing
with a reference or a live pin is ever missing its bytes.

How each side orders its steps:

``put``
    1. stage the bytes (temporary name, flushed, hashed);
    2. publish them under the final name (no-op if already there), keeping
       the staged copy;
    3. in one short write transaction: upsert the row (insert with refcount
       0, or extend ``pinned_until``), then check that the final name still
       exists and publish again from the staged copy if it does not; commit;
    4. discard the staged copy, return (id, size).

``collect``, expired rows
    in one write transaction per row: re-read the row with ``FOR UPDATE``,
    requiring refcount 0 and an expired pin; delete the bytes; delete the
    row; commit.

``collect``, bytes without a row (crash leftovers) older than the grace
    in one write transaction per blob: insert a placeholder row (``ON
    CONFLICT DO NOTHING``; if a row exists, skip); delete the bytes; delete
    the placeholder; commit.

Why this is safe: the collector only deletes bytes while it holds the row
(a row lock on PostgreSQL, its own uncommitted placeholder insert, or, on
SQLite, the database write lock that ``BEGIN IMMEDIATE`` takes), and ``put``
checks the bytes while holding the same row, after its upsert. Two
transactions on one row are serialized, so for a concurrent ``put`` and
``collect`` of the same content there are only two orders:

- ``put``'s upsert first: the row it commits is pinned, so the collector's
  re-read (made after ``put`` commits, since it waits for the lock) no
  longer matches, or its placeholder insert finds the row: nothing deleted.
- the collector first: ``put``'s upsert waits until the deletion committed,
  then inserts a new row, finds the final name gone, and publishes again
  from its staged copy, before committing. This is why step 2 keeps the
  staged copy (a hard link, or a server-side copy) instead of moving it.

``ref`` runs in the caller's transaction and fails with ``BlobNotFound`` if
the row is gone, so a reference can only be committed on a row that exists,
and a row with refcount above 0 is never collected. The pin covers the gap
between ``put`` returning and the caller's ``ref`` committing; a caller that
takes longer than the grace gets ``BlobNotFound`` from ``ref`` and must put
the bytes again.

Crashes: killed between steps 2 and 3, ``put`` leaves published bytes with
no row, which the orphan sweep removes after the grace; killed anywhere, it
leaves at most a staging leftover, removed after the grace. A killed
collector rolls back, leaving at worst an expired unreferenced row whose
bytes are gone, which the next run deletes. The grace for orphans and
staging leftovers must outlast a write in flight: a staged copy collected
during a slow ``put`` makes that ``put`` fail (never a committed row lose
its bytes).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from nubo.store.blobs.backend import Backend, Listed, check_blob_id
from nubo.store.blobs.errors import BlobNotFound, BlobStoreError
from nubo.store.database import Database
from nubo.store.schema import blobs, utcnow

log = logging.getLogger(__name__)

# Rows and listed blobs the collector handles per query.
_PAGE = 500

# pinned_until of the collector's placeholder rows: long expired.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class CollectReport:
    """What one ``collect`` run removed, and how many removals failed."""

    expired: int = 0  # unreferenced rows past their pin, with their bytes
    orphans: int = 0  # bytes that no row accounted for
    staged: int = 0  # staging leftovers
    freed_bytes: int = 0
    errors: int = 0


class Blobs:
    """The blob store: a backend for the bytes, the ``blobs`` table for them."""

    def __init__(self, backend: Backend, db: Database, *, grace: float) -> None:
        self.backend = backend
        self.db = db
        self.grace = grace

    # -- writing ---------------------------------------------------------

    async def put(self, chunks: AsyncIterable[bytes]) -> tuple[str, int]:
        """Store a stream; (id, size) once bytes and row are durable.

        The row has refcount 0 and is pinned for the grace period: reference
        it with ``ref`` in the transaction that records its use.
        """
        staged = await self.backend.stage(chunks)
        try:
            await self.backend.publish(staged)
            async with self.db.write() as conn:
                await conn.execute(self._upsert(staged.id, staged.size))
                if not await self.backend.exists(staged.id):
                    # The collector deleted the bytes between publish and our
                    # upsert; we now hold the row, so publishing again is safe.
                    log.debug("blob republished id=%s", staged.id)
                    await self.backend.publish(staged)
        finally:
            await self._discard(staged.name)
        return staged.id, staged.size

    async def put_bytes(self, data: bytes) -> tuple[str, int]:
        """``put`` for bytes already in memory."""

        async def one() -> AsyncIterator[bytes]:
            yield data

        return await self.put(one())

    def _upsert(self, blob_id: str, size: int) -> sqlite.Insert | postgresql.Insert:
        now = utcnow()
        values = {
            "id": blob_id,
            "size": size,
            "refcount": 0,
            "pinned_until": now + timedelta(seconds=self.grace),
            "created_at": now,
        }
        stmt = self._insert().values(values)
        later = case(
            (
                blobs.c.pinned_until < stmt.excluded.pinned_until,
                stmt.excluded.pinned_until,
            ),
            else_=blobs.c.pinned_until,
        )
        return stmt.on_conflict_do_update(
            index_elements=[blobs.c.id], set_={"pinned_until": later}
        )

    def _insert(self) -> sqlite.Insert | postgresql.Insert:
        if self.db.dialect == "postgresql":
            return postgresql.insert(blobs)
        return sqlite.insert(blobs)

    async def _discard(self, name: str) -> None:
        try:
            await self.backend.discard(name)
        except BlobStoreError as exc:
            # Harmless: the collector removes staging leftovers later.
            log.warning("cannot discard staged blob error=%s", exc)

    # -- references, in the caller's transaction -------------------------

    async def ref(self, conn: AsyncConnection, blob_id: str) -> None:
        """Count one more use of ``blob_id``; ``BlobNotFound`` if it has no row."""
        stmt = (
            update(blobs)
            .where(blobs.c.id == check_blob_id(blob_id))
            .values(refcount=blobs.c.refcount + 1)
        )
        if (await conn.execute(stmt)).rowcount != 1:
            raise BlobNotFound(blob_id)

    async def unref(self, conn: AsyncConnection, blob_id: str) -> None:
        """Count one use fewer; ``BlobNotFound`` if no row has a use to drop.

        At refcount 0 (and past its pin) the blob is the collector's.
        """
        stmt = (
            update(blobs)
            .where(blobs.c.id == check_blob_id(blob_id), blobs.c.refcount > 0)
            .values(refcount=blobs.c.refcount - 1)
        )
        if (await conn.execute(stmt)).rowcount != 1:
            raise BlobNotFound(blob_id)

    async def ref_many(self, conn: AsyncConnection, blob_ids: Iterable[str]) -> None:
        """``ref`` of every id, once per time it is listed (a copy of many
        messages), in one locked read and one batched update per page of
        ids; ``BlobNotFound`` if one has no row."""
        await self._count_many(conn, Counter(blob_ids), +1)

    async def unref_many(self, conn: AsyncConnection, blob_ids: Iterable[str]) -> None:
        """``unref`` of every id, once per time it is listed; ``BlobNotFound``
        if one has no row or fewer uses than listed."""
        await self._count_many(conn, Counter(blob_ids), -1)

    async def _count_many(
        self, conn: AsyncConnection, counts: Counter[str], sign: int
    ) -> None:
        # Rows are locked in id order, as ``ref`` and ``unref`` called on
        # sorted ids would; the locked read also keeps the collector away
        # between the check and the update.
        ids = sorted(check_blob_id(blob_id) for blob_id in counts)
        for start in range(0, len(ids), _PAGE):
            page = ids[start : start + _PAGE]
            found = dict(
                (
                    await conn.execute(
                        select(blobs.c.id, blobs.c.refcount)
                        .where(blobs.c.id.in_(page))
                        .order_by(blobs.c.id)
                        .with_for_update()
                    )
                ).all()
            )
            for blob_id in page:
                if blob_id not in found or found[blob_id] + sign * counts[blob_id] < 0:
                    raise BlobNotFound(blob_id)
            await conn.execute(
                update(blobs)
                .where(blobs.c.id == bindparam("blob_id"))
                .values(refcount=blobs.c.refcount + bindparam("delta")),
                [{"blob_id": b, "delta": sign * counts[b]} for b in page],
            )

    # -- reading ---------------------------------------------------------

    async def open(self, blob_id: str) -> AsyncIterator[bytes]:
        """The blob's bytes as a stream; ``BlobNotFound`` raised here, early."""
        return await self.backend.open(check_blob_id(blob_id))

    async def read_bytes(self, blob_id: str) -> bytes:
        """The whole blob in memory: for small blobs only."""
        return b"".join([chunk async for chunk in await self.open(blob_id)])

    async def exists(self, blob_id: str) -> bool:
        """Whether the blob's bytes are in the backend."""
        try:
            return await self.backend.exists(check_blob_id(blob_id))
        except BlobNotFound:
            return False

    # -- garbage collection ----------------------------------------------

    async def collect(self, grace: float | None = None) -> CollectReport:
        """Delete unreferenced blobs past their pin, then leftovers.

        ``grace`` (default ``blob_gc_grace``) is the age below which bytes
        without a row and staging leftovers are kept, as writes in flight;
        pins are the rows' own ``pinned_until``.
        """
        grace = self.grace if grace is None else grace
        report = CollectReport()
        await self._collect_expired(report)
        await self._collect_leftovers(report, utcnow() - timedelta(seconds=grace))
        log.info(
            "blob collection done expired=%d orphans=%d staged=%d freed=%d errors=%d",
            report.expired,
            report.orphans,
            report.staged,
            report.freed_bytes,
            report.errors,
        )
        return report

    async def _collect_expired(self, report: CollectReport) -> None:
        after = ""
        while True:
            async with self.db.read() as conn:
                page = (
                    (
                        await conn.execute(
                            select(blobs.c.id)
                            .where(
                                blobs.c.refcount == 0,
                                blobs.c.pinned_until < utcnow(),
                                blobs.c.id > after,
                            )
                            .order_by(blobs.c.id)
                            .limit(_PAGE)
                        )
                    )
                    .scalars()
                    .all()
                )
            for blob_id in page:
                try:
                    freed = await self._delete_expired(blob_id)
                except BlobStoreError as exc:
                    report.errors += 1
                    log.warning("cannot collect blob id=%s error=%s", blob_id, exc)
                    continue
                if freed is not None:
                    report.expired += 1
                    report.freed_bytes += freed
            if len(page) < _PAGE:
                return
            after = page[-1]

    async def _delete_expired(self, blob_id: str) -> int | None:
        """Delete one expired row and its bytes; its size, or None if it
        was referenced or pinned again meanwhile."""
        async with self.db.write() as conn:
            size = (
                await conn.execute(
                    select(blobs.c.size)
                    .where(
                        blobs.c.id == blob_id,
                        blobs.c.refcount == 0,
                        blobs.c.pinned_until < utcnow(),
                    )
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if size is None:
                return None
            await self.backend.delete(blob_id)
            await conn.execute(delete(blobs).where(blobs.c.id == blob_id))
        log.debug("blob collected id=%s", blob_id)
        return int(size)

    async def _collect_leftovers(self, report: CollectReport, cutoff: datetime) -> None:
        batch: list[Listed] = []
        async for entry in self.backend.list():
            if entry.modified >= cutoff:
                continue
            if entry.staged:
                await self._collect_staged(entry, report)
                continue
            batch.append(entry)
            if len(batch) >= _PAGE:
                await self._collect_orphans(batch, report)
                batch = []
        if batch:
            await self._collect_orphans(batch, report)

    async def _collect_staged(self, entry: Listed, report: CollectReport) -> None:
        try:
            await self.backend.discard(entry.name)
        except BlobStoreError as exc:
            report.errors += 1
            log.warning("cannot remove staging leftover error=%s", exc)
            return
        report.staged += 1
        report.freed_bytes += entry.size

    async def _collect_orphans(
        self, batch: Sequence[Listed], report: CollectReport
    ) -> None:
        ids = [entry.name for entry in batch]
        async with self.db.read() as conn:
            known = set(
                (
                    await conn.execute(select(blobs.c.id).where(blobs.c.id.in_(ids)))
                ).scalars()
            )
        for entry in batch:
            if entry.name in known:
                continue
            try:
                deleted = await self._delete_orphan(entry.name)
            except BlobStoreError as exc:
                report.errors += 1
                log.warning("cannot collect orphan id=%s error=%s", entry.name, exc)
                continue
            if deleted:
                report.orphans += 1
                report.freed_bytes += entry.size

    async def _delete_orphan(self, blob_id: str) -> bool:
        """Delete bytes that have no row, holding a placeholder row meanwhile
        so that a concurrent ``put`` waits and then publishes again."""
        now = utcnow()
        placeholder = (
            self._insert()
            .values(id=blob_id, size=0, refcount=0, pinned_until=_EPOCH, created_at=now)
            .on_conflict_do_nothing(index_elements=[blobs.c.id])
            .returning(blobs.c.id)
        )
        async with self.db.write() as conn:
            if (await conn.execute(placeholder)).first() is None:
                return False  # a writer has committed a row since we looked
            await self.backend.delete(blob_id)
            await conn.execute(delete(blobs).where(blobs.c.id == blob_id))
        log.debug("orphan blob collected id=%s", blob_id)
        return True

    async def healthy(self) -> bool:
        """Whether the backend answers, for ``/healthz``."""
        return await self.backend.healthy()

    async def close(self) -> None:
        await self.backend.close()
