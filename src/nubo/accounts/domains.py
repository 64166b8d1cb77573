"""Domains: the mail domains this server hosts.

Functions here work inside a transaction the caller opened, so that a service
call can combine them; names are already in A-label form.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from nubo.accounts.errors import AlreadyExists, DomainNotEmpty, NoSuchDomain
from nubo.accounts.models import Domain
from nubo.store.schema import aliases, domains, users


async def find_id(conn: AsyncConnection, name: str) -> int | None:
    query = select(domains.c.id).where(domains.c.name == name)
    found: int | None = (await conn.execute(query)).scalar_one_or_none()
    return found


async def find(conn: AsyncConnection, name: str) -> Domain | None:
    query = select(domains.c.id, domains.c.name, domains.c.created_at).where(
        domains.c.name == name
    )
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        return None
    return Domain(id=row.id, name=row.name, created_at=row.created_at)


async def require_id(conn: AsyncConnection, name: str) -> int:
    """The id of domain ``name``, or NoSuchDomain."""
    found = await find_id(conn, name)
    if found is None:
        raise NoSuchDomain(f"no such domain: {name}")
    return found


async def add(conn: AsyncConnection, name: str, now: datetime) -> Domain:
    if await find_id(conn, name) is not None:
        raise AlreadyExists(f"domain {name} already exists")

    query = insert(domains).values(name=name, created_at=now).returning(domains.c.id)
    domain_id = (await conn.execute(query)).scalar_one()
    return Domain(id=domain_id, name=name, created_at=now)


async def list_all(conn: AsyncConnection) -> list[Domain]:
    """Every domain with how many users and aliases it holds, by name."""
    user_count = (
        select(func.count()).where(users.c.domain_id == domains.c.id).scalar_subquery()
    )
    alias_count = (
        select(func.count())
        .where(aliases.c.domain_id == domains.c.id)
        .scalar_subquery()
    )
    query = select(
        domains.c.id,
        domains.c.name,
        domains.c.created_at,
        user_count.label("users"),
        alias_count.label("aliases"),
    ).order_by(domains.c.name)

    rows = (await conn.execute(query)).all()
    return [
        Domain(
            id=row.id,
            name=row.name,
            created_at=row.created_at,
            users=row.users,
            aliases=row.aliases,
        )
        for row in rows
    ]


async def remove(conn: AsyncConnection, name: str) -> None:
    """Remove an empty domain; DomainNotEmpty while anything lives in it."""
    domain_id = await require_id(conn, name)

    held = await _holdings(conn, domain_id)
    if held:
        raise DomainNotEmpty(f"domain {name} still has {held}; remove them first")

    await conn.execute(delete(domains).where(domains.c.id == domain_id))


async def _holdings(conn: AsyncConnection, domain_id: int) -> str:
    """``"2 users and 1 alias"``, or ``""`` for an empty domain."""
    counts = []
    for table, noun in ((users, "user"), (aliases, "alias")):
        query = select(func.count()).where(table.c.domain_id == domain_id)
        count = (await conn.execute(query)).scalar_one()
        if count:
            plural = "es" if noun == "alias" else "s"
            counts.append(f"{count} {noun}{plural if count > 1 else ''}")
    return " and ".join(counts)
