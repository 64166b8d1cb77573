"""What the queue tests share: an Outbound over the mailstore rig (the
``mail`` fixture of ``tests/mail/conftest.py``), messages, and reading what
landed in an Inbox or stayed in the queue tables."""

from __future__ import annotations

import re
import uuid
from email import message_from_bytes
from email.message import Message
from typing import Any

from sqlalchemy import select

from nubo.accounts import ManualClock
from nubo.mail.dns import Resolver
from nubo.mail.queue import Outbound
from nubo.mail.queue.outbound import LEASE_SECONDS
from nubo.store.schema import blobs as blobs_table
from nubo.store.schema import queue_messages, queue_recipients
from tests.mail.mailstore_rig import MailRig
from tests.mail.scripted_mx import ScriptedMX

QUEUE_SETTINGS: dict[str, Any] = {
    "hostname": "mail.example.org",
    "queue_first_retry": 60.0,
    "queue_max_retry": 600.0,
    "queue_delay_notice_after": 1800.0,
    "queue_retry_for": 7200.0,
    "queue_poll_interval": 0.2,
}


def make_outbound(
    rig: MailRig,
    mx: ScriptedMX | None = None,
    clock: ManualClock | None = None,
    *,
    lease_seconds: float = LEASE_SECONDS,
    **settings: Any,
) -> Outbound:
    """An Outbound whose remote mail goes to ``mx``, whatever the domain."""
    values = dict(QUEUE_SETTINGS)
    if mx is not None:
        values["mx_override"] = f"*={mx.address}"
    values.update(settings)
    config = rig.config.replace(**values)
    return Outbound(
        config,
        rig.db,
        rig.blobs,
        rig.bus,
        rig.store,
        rig.accounts,
        Resolver.from_config(config),
        clock=clock,
        lease_seconds=lease_seconds,
    )


def message(
    n: int = 0, *, sender: str = "ann@example.org", to: str = "bob@remote.test"
) -> bytes:
    """A small message with a unique Message-ID."""
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: note {n}\r\n"
        f"Date: Mon, 2 Mar 2026 10:00:00 +0100\r\n"
        f"Message-ID: <{n}.{uuid.uuid4().hex}@example.org>\r\n\r\n"
        f"Hello {n}.\r\n"
    ).encode()


# The trace fields the queue's local delivery puts on top (RFC 5321 §4.4).
_LOCAL_TRACE = re.compile(
    rb"\AReturn-Path: <[^>\r\n]*>\r\n"
    rb"Received: from queue\r\n\tby [^\r\n]+ id q[0-9]+;\r\n\t[^\r\n]+\r\n"
)


def untraced(stored: bytes) -> bytes:
    """A locally delivered copy without its Return-Path and Received."""
    found = _LOCAL_TRACE.match(stored)
    assert found is not None, stored[:200]
    return stored[found.end() :]


async def inbox(rig: MailRig, user_id: int) -> list[bytes]:
    """The messages in a user's INBOX, oldest first."""
    await rig.store.ensure_mailboxes(user_id)
    box = await rig.store.get_mailbox(user_id, "INBOX")
    rows = await rig.store.messages(box.id, with_info=False)
    return [await rig.store.read_message(row.blob_id) for row in rows]


def report_parts(raw: bytes) -> tuple[Message, list[dict[str, str]], str]:
    """A DSN's message, its per-recipient status fields, its returned header."""
    parsed = message_from_bytes(raw)
    assert parsed.get_content_type() == "multipart/report"
    assert parsed.get_param("report-type") == "delivery-status"
    parts = parsed.get_payload()
    assert isinstance(parts, list) and len(parts) == 3
    status_part, header_part = parts[1], parts[2]
    assert status_part.get_content_type() == "message/delivery-status"
    assert header_part.get_content_type() == "text/rfc822-headers"
    groups = status_part.get_payload()
    assert isinstance(groups, list)
    recipients = [dict(group.items()) for group in groups[1:]]
    returned = header_part.get_payload(decode=True)
    assert isinstance(returned, bytes)
    return parsed, recipients, returned.decode()


async def queue_rows(rig: MailRig) -> tuple[int, int]:
    """(message rows, recipient rows) left in the queue tables."""
    async with rig.db.read() as conn:
        messages = len((await conn.execute(select(queue_messages.c.id))).all())
        recipients = len((await conn.execute(select(queue_recipients.c.id))).all())
    return messages, recipients


async def refcount(rig: MailRig, blob_id: str) -> int:
    async with rig.db.read() as conn:
        found = await conn.execute(
            select(blobs_table.c.refcount).where(blobs_table.c.id == blob_id)
        )
        return int(found.scalar_one())
