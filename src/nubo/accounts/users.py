"""Users: the accounts people sign in to, one per address.

Functions here work inside a transaction the caller opened. An address is
either a user's or an alias's, never both: delivery could not tell which one
was meant.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    delete,
    exists,
    false,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from nubo.accounts import domains
from nubo.accounts.addresses import Address
from nubo.accounts.errors import AlreadyExists, Conflict, InvalidName, NoSuchUser
from nubo.accounts.models import User
from nubo.store.schema import alias_targets, aliases, known_networks, users

MAX_DISPLAY_NAME = 200

# Every column but the password hash, which never leaves this package.
_PUBLIC = (
    users.c.id,
    users.c.address,
    users.c.display_name,
    users.c.quota_bytes,
    users.c.is_admin,
    users.c.disabled,
    users.c.created_at,
    users.c.last_login_at,
)


def check_display_name(name: str) -> str:
    """The name, trimmed, if it can be shown in a header; else InvalidName."""
    text = name.strip()
    if len(text) > MAX_DISPLAY_NAME:
        raise InvalidName(f"the name is longer than {MAX_DISPLAY_NAME} characters")
    if any(unicodedata.category(char) == "Cc" for char in text):
        raise InvalidName("the name contains control characters")
    return text


async def find(conn: AsyncConnection, address: str) -> User | None:
    query = select(*_PUBLIC).where(users.c.address == address)
    row = (await conn.execute(query)).one_or_none()
    return None if row is None else User.from_row(row)


async def find_many(
    conn: AsyncConnection, condition: ColumnElement[bool]
) -> list[User]:
    """The users matching ``condition``, by address."""
    query = select(*_PUBLIC).where(condition).order_by(users.c.address)
    return [User.from_row(row) for row in (await conn.execute(query)).all()]


async def require(conn: AsyncConnection, address: str) -> User:
    """The user of ``address``, or NoSuchUser."""
    user = await find(conn, address)
    if user is None:
        raise NoSuchUser(f"no such user: {address}")
    return user


async def check_free(
    conn: AsyncConnection, address: str, *, for_alias: bool = False
) -> None:
    """AlreadyExists if a user or an alias already has ``address``."""
    if await find(conn, address) is not None:
        if for_alias:
            raise AlreadyExists(
                f"{address} is a user's address; an alias cannot have it"
            )
        raise AlreadyExists(f"user {address} already exists")

    query = select(exists().where(aliases.c.address == address))
    if (await conn.execute(query)).scalar_one():
        raise AlreadyExists(f"alias {address} already exists")


async def add(
    conn: AsyncConnection,
    address: Address,
    *,
    password_hash: str,
    display_name: str,
    quota_bytes: int,
    is_admin: bool,
    now: datetime,
) -> User:
    domain_id = await domains.require_id(conn, address.domain)
    await check_free(conn, str(address))

    query = insert(users).values(
        domain_id=domain_id,
        local_part=address.local_part,
        address=str(address),
        display_name=display_name,
        password_hash=password_hash,
        quota_bytes=quota_bytes,
        is_admin=is_admin,
        disabled=False,
        created_at=now,
    )
    await conn.execute(query)
    return await require(conn, str(address))


async def refuse_last_admin(conn: AsyncConnection, user: User) -> None:
    """Conflict if ``user`` is the only enabled administrator.

    Removing or disabling them would leave no one to manage the server. The
    enabled administrators' rows are locked (PostgreSQL), so two such changes
    at once cannot each see the other still there.
    """
    if not user.is_admin or user.disabled:
        return
    query = (
        select(users.c.id)
        .where(users.c.is_admin == true(), users.c.disabled == false())
        .with_for_update()
    )
    others = [id_ for id_ in (await conn.execute(query)).scalars() if id_ != user.id]
    if not others:
        raise Conflict(f"{user.address} is the last administrator")


async def admins(conn: AsyncConnection, domain_id: int | None = None) -> list[User]:
    """The enabled administrators, of one domain when ``domain_id`` is given."""
    condition = (users.c.is_admin == true()) & ~users.c.disabled
    if domain_id is not None:
        condition = condition & (users.c.domain_id == domain_id)
    return await find_many(conn, condition)


async def list_all(conn: AsyncConnection, domain: str | None = None) -> list[User]:
    if domain is None:
        return await find_many(conn, true())
    domain_id = await domains.require_id(conn, domain)
    return await find_many(conn, users.c.domain_id == domain_id)


async def change(conn: AsyncConnection, address: str, **values: Any) -> User:
    """Set columns of the user of ``address``; NoSuchUser if there is none."""
    query = update(users).where(users.c.address == address).values(**values)
    if (await conn.execute(query)).rowcount == 0:
        raise NoSuchUser(f"no such user: {address}")
    return await require(conn, address)


async def remove(conn: AsyncConnection, address: str) -> list[str]:
    """Remove a user; returns the aliases removed because they had no target left.

    App passwords, alias targets and known networks go with the user (the
    foreign keys cascade).
    """
    user = await require(conn, address)

    query = select(alias_targets.c.alias_id).where(alias_targets.c.user_id == user.id)
    alias_ids = list((await conn.execute(query)).scalars())

    await conn.execute(delete(users).where(users.c.id == user.id))
    return await _remove_empty_aliases(conn, alias_ids)


async def _remove_empty_aliases(
    conn: AsyncConnection, alias_ids: list[int]
) -> list[str]:
    if not alias_ids:
        return []

    has_target = exists().where(alias_targets.c.alias_id == aliases.c.id)
    query = (
        delete(aliases)
        .where(aliases.c.id.in_(alias_ids), ~has_target)
        .returning(aliases.c.address)
    )
    removed = list((await conn.execute(query)).scalars())
    return sorted(removed)


async def login_row(
    conn: AsyncConnection, address: str, known_since: datetime, network: str
) -> Row[*tuple[Any, ...]] | None:
    """What signing in needs: the user, its hash, and whether ``network`` is known.

    One query whether or not the user exists, so both take the same time.
    """
    known = (
        select(known_networks.c.last_success_at)
        .where(
            known_networks.c.user_id == users.c.id,
            known_networks.c.network == network,
            known_networks.c.last_success_at >= known_since,
        )
        .scalar_subquery()
    )
    query = select(*_PUBLIC, users.c.password_hash, known.label("known_at")).where(
        users.c.address == address
    )
    return (await conn.execute(query)).one_or_none()
