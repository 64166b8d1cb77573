"""A mailstore on each storage pair, and a check of its invariants.

``mail`` runs a test twice: on "embedded" (SQLite and a folder) and on
"scale" (a fresh PostgreSQL database and a fresh prefix in the session's
SeaweedFS bucket), with a ``LocalBus`` so tests can watch events.
``tests/mail/conftest.py`` makes the fixtures visible to the mail suite.

``check_invariants`` asserts what every change must leave true: usage
equals the bytes of the user's messages, each blob's refcount equals the
messages using it and its bytes are there, UIDs below UIDNEXT, MODSEQs at
most HIGHESTMODSEQ, expunged UIDs gone.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select

from nubo.accounts import Accounts
from nubo.config import Config, load
from nubo.mail.mailstore import Mailstore
from nubo.store.blobs import Blobs, open_blobs
from nubo.store.database import Database
from nubo.store.events import Event, LocalBus, Subscription
from nubo.store.migrate import upgrade
from nubo.store.schema import blobs as blobs_table
from nubo.store.schema import expunged, mailboxes, messages, user_usage
from tests.conftest import create_pg_database, drop_pg_database
from tests.seaweed import Seaweed

CHEAP = {"password_time_cost": 1, "password_memory_kib": 8}


@dataclass(frozen=True)
class MailPair:
    kind: str  # "embedded" or "scale"
    pg_admin: str = ""
    seaweed: Seaweed | None = None


@dataclass
class MailRig:
    kind: str
    config: Config
    db: Database
    blobs: Blobs
    bus: LocalBus
    store: Mailstore
    accounts: Accounts
    env: dict[str, str]
    users: dict[str, int] = field(default_factory=dict)

    async def user(self, local: str, quota: int = 0) -> int:
        """The id of a new user ``local@example.org`` with this quota."""
        if not self.users:
            await self.accounts.add_domain("example.org")
        user = await self.accounts.add_user(
            f"{local}@example.org", "correct horse battery", quota_bytes=quota
        )
        self.users[local] = user.id
        return user.id


@pytest.fixture(
    params=["embedded", pytest.param("scale", marks=pytest.mark.scale)],
)
def mail_pair(request: pytest.FixtureRequest) -> MailPair:
    if request.param == "embedded":
        return MailPair("embedded")
    return MailPair(
        "scale",
        pg_admin=request.getfixturevalue("pg_server"),
        seaweed=request.getfixturevalue("seaweed"),
    )


@pytest.fixture
async def mail(mail_pair: MailPair, tmp_path: Path) -> AsyncIterator[MailRig]:
    """A migrated store, a mailstore over it and a LocalBus."""
    settings: dict[str, object] = {"data": str(tmp_path / "data"), **CHEAP}
    pg_name = ""
    if mail_pair.seaweed is None:
        settings["database_url"] = f"sqlite+aiosqlite:///{tmp_path / 'nubo.db'}"
        settings["blob_url"] = str(tmp_path / "blobs")
    else:
        pg_name, settings["database_url"] = await create_pg_database(mail_pair.pg_admin)
        settings.update(mail_pair.seaweed.settings("m-" + uuid.uuid4().hex[:12]))

    config = load(environ={}).replace(**settings)
    db = Database(config.effective_database_url)
    try:
        await upgrade(db)
        blobs = open_blobs(config, db)
        bus = LocalBus()
        env = {"NUBO_" + k.upper(): str(v) for k, v in settings.items()}
        yield MailRig(
            mail_pair.kind,
            config,
            db,
            blobs,
            bus,
            Mailstore(db, blobs, bus),
            Accounts(db, config),
            env,
        )
        await blobs.close()
    finally:
        await db.close()
        if pg_name:
            await drop_pg_database(mail_pair.pg_admin, pg_name)


def drain(sub: Subscription) -> list[Event]:
    """The events a subscription holds now."""
    found = []
    while (event := sub.get_nowait()) is not None:
        found.append(event)
    return found


def message(n: int = 0, size: int = 0, *, subject: str = "hello") -> bytes:
    """A small well-formed message, distinct per ``n``, padded to ``size``."""
    head = (
        f"From: Ann <ann@example.net>\r\nTo: bob@example.org\r\n"
        f"Subject: {subject} {n}\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\n"
        f"Message-ID: <{n}.{uuid.uuid4().hex}@example.net>\r\n\r\n"
    ).encode()
    body = b"Hi Bob,\r\n"
    while len(head) + len(body) < size:
        body += b"the quick brown fox jumps over the lazy dog, again and again\r\n"
    return head + body


async def check_invariants(rig: MailRig) -> None:
    """Assert the store's accounting is exact (see the module docstring)."""
    async with rig.db.read() as conn:
        used = dict(
            (
                await conn.execute(
                    select(mailboxes.c.user_id, func.sum(messages.c.size))
                    .select_from(mailboxes.join(messages))
                    .group_by(mailboxes.c.user_id)
                )
            ).all()
        )
        usage = dict(
            (
                await conn.execute(
                    select(user_usage.c.user_id, user_usage.c.mail_bytes)
                )
            ).all()
        )
        uses = dict(
            (
                await conn.execute(
                    select(messages.c.blob_id, func.count()).group_by(
                        messages.c.blob_id
                    )
                )
            ).all()
        )
        refcounts = dict(
            (await conn.execute(select(blobs_table.c.id, blobs_table.c.refcount))).all()
        )
        boxes = (await conn.execute(select(mailboxes))).all()
        rows = (
            await conn.execute(
                select(
                    messages.c.mailbox_id,
                    messages.c.uid,
                    messages.c.modseq,
                    messages.c.size,
                    messages.c.blob_id,
                )
            )
        ).all()
        gone = (await conn.execute(select(expunged))).all()

    for user_id, mail_bytes in usage.items():
        assert mail_bytes == used.get(user_id, 0), f"usage of user {user_id}"
    for user_id in used:
        assert user_id in usage
    for blob_id, refcount in refcounts.items():
        assert refcount == uses.get(blob_id, 0), f"refcount of {blob_id}"
    assert set(uses) <= set(refcounts)

    by_box = {box.id: box for box in boxes}
    present = {(row.mailbox_id, row.uid) for row in rows}
    for row in rows:
        box = by_box[row.mailbox_id]
        assert row.uid < box.uidnext
        assert 0 < row.modseq <= box.highestmodseq
    for entry in gone:
        assert (entry.mailbox_id, entry.uid) not in present
        assert entry.uid < by_box[entry.mailbox_id].uidnext
        assert entry.modseq <= by_box[entry.mailbox_id].highestmodseq
    for blob_id in {row.blob_id for row in rows}:
        data = await rig.blobs.read_bytes(blob_id)
        assert hashlib.sha256(data).hexdigest() == blob_id
