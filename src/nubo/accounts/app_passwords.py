"""App passwords: one random secret per device, each revocable on its own.

A member gives each mail client or sync app its own secret, named after the
device ("phone", "laptop Thunderbird"), so that losing a device means revoking
one secret, not changing the password everywhere. The secret is shown once,
at creation; the store keeps only its SHA-256 (see ``passwords``).
"""

from __future__ import annotations

import unicodedata
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from nubo.accounts.errors import AlreadyExists, InvalidName, NoSuchAppPassword
from nubo.accounts.models import AppPassword
from nubo.store.schema import app_passwords

MAX_NAME = 100


def check_name(name: str) -> str:
    """The name, trimmed, if it can be stored and shown; else InvalidName."""
    text = name.strip()
    if not text:
        raise InvalidName("the app password name is empty")
    if len(text) > MAX_NAME:
        raise InvalidName(f"the app password name is longer than {MAX_NAME} characters")
    if any(unicodedata.category(char) == "Cc" for char in text):
        raise InvalidName("the app password name contains control characters")
    return text


async def add(
    conn: AsyncConnection, user_id: int, name: str, secret_hash: str, now: datetime
) -> AppPassword:
    query = select(app_passwords.c.id).where(
        app_passwords.c.user_id == user_id, app_passwords.c.name == name
    )
    if (await conn.execute(query)).first() is not None:
        raise AlreadyExists(f"an app password named {name!r} already exists")

    await conn.execute(
        insert(app_passwords).values(
            user_id=user_id, name=name, secret_hash=secret_hash, created_at=now
        )
    )
    return AppPassword(name=name, created_at=now, last_used_at=None)


async def list_for(conn: AsyncConnection, user_id: int) -> list[AppPassword]:
    query = (
        select(
            app_passwords.c.name,
            app_passwords.c.created_at,
            app_passwords.c.last_used_at,
        )
        .where(app_passwords.c.user_id == user_id)
        .order_by(app_passwords.c.name)
    )
    rows = (await conn.execute(query)).all()
    return [AppPassword(row.name, row.created_at, row.last_used_at) for row in rows]


async def revoke(conn: AsyncConnection, user_id: int, name: str) -> None:
    query = delete(app_passwords).where(
        app_passwords.c.user_id == user_id, app_passwords.c.name == name
    )
    if (await conn.execute(query)).rowcount == 0:
        raise NoSuchAppPassword(f"no app password named {name!r}")


async def hashes_for(conn: AsyncConnection, user_id: int) -> list[tuple[int, str]]:
    """(id, secret hash) of each app password of the user."""
    query = select(app_passwords.c.id, app_passwords.c.secret_hash).where(
        app_passwords.c.user_id == user_id
    )
    return [(row.id, row.secret_hash) for row in (await conn.execute(query)).all()]


async def touch(
    conn: AsyncConnection, app_password_id: int, now: datetime
) -> str | None:
    """Record a use; returns the name, or None if it was revoked meanwhile."""
    query = (
        update(app_passwords)
        .where(app_passwords.c.id == app_password_id)
        .values(last_used_at=now)
        .returning(app_passwords.c.name)
    )
    name: str | None = (await conn.execute(query)).scalar_one_or_none()
    return name
