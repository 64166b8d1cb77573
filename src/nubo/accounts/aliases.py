"""Aliases, plus-addressing and catch-alls: which users an address reaches.

An alias delivers to one or more users (never to another alias, so there are
no loops to detect). A domain may have one catch-all alias, ``@domain``, which
receives what no user or alias of the domain claims. ``user+tag@domain``
reaches what ``user@domain`` reaches.

``resolve`` is the one place delivery asks. Its order: the exact user, the
exact alias, the address without its ``+tag`` (user, then alias), and last the
domain's catch-all. A disabled user receives nothing: an address that belongs
to one resolves to no one, and does *not* fall through to the catch-all, so
disabling an account never sends its mail to whoever holds the catch-all.
Likewise an alias whose every target is disabled resolves to no one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from nubo.accounts import domains, users
from nubo.accounts.addresses import Address, parse_address
from nubo.accounts.errors import InvalidAddress, NoSuchAlias
from nubo.accounts.models import Alias, User
from nubo.store.schema import alias_targets, aliases
from nubo.store.schema import users as users_table


async def add(
    conn: AsyncConnection, address: Address, targets: list[Address], now: datetime
) -> Alias:
    domain_id = await domains.require_id(conn, address.domain)
    await users.check_free(conn, str(address), for_alias=True)

    target_users = {}
    for target in targets:
        user = await users.require(conn, str(target))
        target_users[user.id] = user.address

    query = (
        insert(aliases)
        .values(
            domain_id=domain_id,
            local_part=address.local_part or None,
            address=str(address),
            created_at=now,
        )
        .returning(aliases.c.id)
    )
    alias_id = (await conn.execute(query)).scalar_one()

    rows = [{"alias_id": alias_id, "user_id": user_id} for user_id in target_users]
    await conn.execute(insert(alias_targets), rows)
    return Alias(str(address), tuple(sorted(target_users.values())))


async def list_all(conn: AsyncConnection, domain: str | None = None) -> list[Alias]:
    """Every alias with its targets, by address."""
    query = (
        select(aliases.c.address, users_table.c.address.label("target"))
        .select_from(aliases)
        .outerjoin(alias_targets, alias_targets.c.alias_id == aliases.c.id)
        .outerjoin(users_table, users_table.c.id == alias_targets.c.user_id)
        .order_by(aliases.c.address, users_table.c.address)
    )
    if domain is not None:
        domain_id = await domains.require_id(conn, domain)
        query = query.where(aliases.c.domain_id == domain_id)

    grouped: dict[str, list[str]] = defaultdict(list)
    for row in (await conn.execute(query)).all():
        targets = grouped[row.address]
        if row.target is not None:
            targets.append(row.target)
    return [Alias(address, tuple(targets)) for address, targets in grouped.items()]


async def remove(conn: AsyncConnection, address: str) -> None:
    query = delete(aliases).where(aliases.c.address == address)
    if (await conn.execute(query)).rowcount == 0:
        raise NoSuchAlias(f"no such alias: {address}")


async def targets(conn: AsyncConnection, address: str) -> list[User] | None:
    """The users alias ``address`` reaches, or None if it is not an alias."""
    query = select(aliases.c.id).where(aliases.c.address == address)
    alias_id = (await conn.execute(query)).scalar_one_or_none()
    if alias_id is None:
        return None

    members = select(alias_targets.c.user_id).where(
        alias_targets.c.alias_id == alias_id
    )
    found = await users.find_many(conn, users_table.c.id.in_(members))
    return found


async def resolve(conn: AsyncConnection, text: str) -> list[User]:
    """The enabled users mail to ``text`` goes to; empty if it goes nowhere."""
    try:
        address = parse_address(text)
    except InvalidAddress:
        return []

    for candidate in _candidates(address):
        found = await _exact(conn, str(candidate))
        if found is not None:
            return [user for user in found if not user.disabled]
    return []


async def may_send_as(conn: AsyncConnection, user_id: int, text: str) -> bool:
    """Whether ``text`` is the user's own address or an alias that reaches
    them, with or without a ``+tag``; a catch-all does not count, or its
    holder could send as anyone of the domain."""
    try:
        address = parse_address(text)
    except InvalidAddress:
        return False

    for candidate in _candidates(address)[:-1]:  # all but the catch-all
        found = await _exact(conn, str(candidate))
        if found is not None:
            return any(user.id == user_id for user in found)
    return False


def _candidates(address: Address) -> list[Address]:
    """The addresses tried in turn: exact, without the tag, the catch-all."""
    tried = [address]
    base = address.without_tag()
    if base is not None:
        tried.append(base)
    tried.append(address.catch_all())
    return tried


async def _exact(conn: AsyncConnection, address: str) -> list[User] | None:
    """The user of ``address``, or the alias's targets; None if neither."""
    user = await users.find(conn, address)
    if user is not None:
        return [user]
    return await targets(conn, address)
