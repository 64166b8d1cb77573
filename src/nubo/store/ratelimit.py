"""Fixed-window rate limits shared by every process, in ``rate_counters``.

A subject (``"submit:42"``: user 42's submissions) may be counted ``limit``
times per window of ``window`` seconds; the window starts at the first hit
after the previous one ended. Each hit is one transaction of conditional
UPDATEs, so two processes counting the same subject at once never pass the
limit together, on SQLite or PostgreSQL.

A fixed window lets a burst of up to twice the limit straddle two windows;
that is the price of one row per subject.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from nubo.store.database import Database
from nubo.store.schema import rate_counters, utcnow

_counters = rate_counters.c


class RateLimits:
    """Counters of one store."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def hit(
        self, subject: str, limit: int, window: float, now: datetime | None = None
    ) -> bool:
        """Count one event; False (and nothing counted) when over the limit."""
        now = now or utcnow()
        start = now - timedelta(seconds=window)
        async with self.db.write() as conn:
            if await _increment(conn, subject, limit, start):
                return True
            if await _restart(conn, subject, start, now):
                return True
            if await self._create(conn, subject, now):
                return True
            # Created by another process since the first UPDATE.
            return await _increment(conn, subject, limit, start)

    async def count(
        self, subject: str, window: float, now: datetime | None = None
    ) -> int:
        """Events counted in the subject's current window."""
        start = (now or utcnow()) - timedelta(seconds=window)
        query = select(_counters.count).where(
            _counters.subject == subject, _counters.window_start > start
        )
        async with self.db.read() as conn:
            found: int | None = (await conn.execute(query)).scalar_one_or_none()
        return found or 0

    async def _create(self, conn: AsyncConnection, subject: str, now: datetime) -> bool:
        dialect_insert = (
            postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert
        )
        statement = (
            dialect_insert(rate_counters)
            .values(subject=subject, window_start=now, count=1)
            .on_conflict_do_nothing(index_elements=["subject"])
        )
        return (await conn.execute(statement)).rowcount == 1


async def _increment(
    conn: AsyncConnection, subject: str, limit: int, start: datetime
) -> bool:
    statement = (
        update(rate_counters)
        .where(
            _counters.subject == subject,
            _counters.window_start > start,
            _counters.count < limit,
        )
        .values(count=_counters.count + 1)
    )
    return (await conn.execute(statement)).rowcount == 1


async def _restart(
    conn: AsyncConnection, subject: str, start: datetime, now: datetime
) -> bool:
    statement = (
        update(rate_counters)
        .where(_counters.subject == subject, _counters.window_start <= start)
        .values(window_start=now, count=1)
    )
    return (await conn.execute(statement)).rowcount == 1
