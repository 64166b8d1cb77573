"""The one SQL construct that differs between SQLite and PostgreSQL here.

Both speak ``INSERT … ON CONFLICT`` with the same meaning, but SQLAlchemy
builds it from each dialect's own ``insert``.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def upsert(conn: AsyncConnection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into ``table`` that can take ``on_conflict_do_…``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
